# ViT-B/16 + LoRA of rank 8 on every qkv projection.
_base_ = ['./vit-b16_linear.py']
model = dict(backbone=dict(lora_rank=8, lora_alpha=8.0))
