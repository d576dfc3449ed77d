# DINOv2 ViT-B/14, every weight trained (full tuning; use a 1/10 learning rate).
_base_ = ['./dinov2-b14_linear.py']
model = dict(backbone=dict(freeze_pretrained=False))
