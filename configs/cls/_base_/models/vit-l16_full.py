# ViT-L/16, every weight trained (full tuning; use a 1/10 learning rate).
_base_ = ['./vit-l16_linear.py']
model = dict(backbone=dict(freeze_pretrained=False))
