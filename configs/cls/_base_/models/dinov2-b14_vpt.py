# DINOv2 ViT-B/14 + VPT-deep: 10 learnable prompt tokens per layer.
_base_ = ['./dinov2-b14_linear.py']
model = dict(backbone=dict(num_prompts=10))
