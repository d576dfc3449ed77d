# Dyn-Adapter (early exits, Houlsby adapter d=8), ViT-B/16 per frame, SSv2 8 uniform frames (Dyn-Adapter Table 7)
_base_ = ['../dyn_repadapter/_base_/dyn-repadapter_vit-b16_u8_ssv2.py']
model = dict(backbone=dict(petl=dict(_delete_=True, type='houlsby', dim=8, scale=1.0,
                                     dropout=0.1)))
