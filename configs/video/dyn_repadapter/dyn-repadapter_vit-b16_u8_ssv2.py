# Dyn-RepAdapter (early exits, RepAdapter d=8), ViT-B/16 per frame, SSv2 8 uniform frames (Dyn-Adapter Table 7)
_base_ = ['./_base_/dyn-repadapter_vit-b16_u8_ssv2.py']
