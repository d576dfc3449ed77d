# DINOv2 ViT-B/14 + LoRA of rank 8 on every qkv projection.
_base_ = ['./dinov2-b14_linear.py']
model = dict(backbone=dict(petl=dict(type='lora', rank=8, alpha=8.0, targets=['qkv'])))
