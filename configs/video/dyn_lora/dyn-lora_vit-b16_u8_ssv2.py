# Dyn-LoRA (early exits, LoRA rank 8 on qkv), ViT-B/16 per frame, SSv2 8 uniform frames (Dyn-Adapter Table 7)
_base_ = ['../dyn_repadapter/_base_/dyn-repadapter_vit-b16_u8_ssv2.py']
model = dict(backbone=dict(petl=dict(_delete_=True, type='lora', rank=8, alpha=8.0,
                                     targets=['qkv'])))
