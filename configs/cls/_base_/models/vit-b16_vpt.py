# ViT-B/16 + VPT-deep: 10 learnable prompt tokens per layer.
_base_ = ['./vit-b16_linear.py']
model = dict(backbone=dict(num_prompts=10))
