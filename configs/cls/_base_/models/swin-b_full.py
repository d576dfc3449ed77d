# Swin-B, every weight trained (full tuning; use a 1/10 learning rate).
_base_ = ['./swin-b_linear.py']
model = dict(backbone=dict(freeze_pretrained=False))
