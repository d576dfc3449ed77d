# ViT-B/16 + LoRA of rank 8 on every qkv projection.
_base_ = ['./vit-b16_linear.py']
model = dict(backbone=dict(petl=dict(type='lora', rank=8, alpha=8.0, targets=['qkv'])))
