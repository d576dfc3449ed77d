# Full tuning + DynamicViT (rho=0.7 before blocks 4, 7, 10, ratio + distillation losses, DyT poster Table 5), ViT-B/16, CIFAR-100
_base_ = ['../full/full_vit-b16_cifar100.py']
model = dict(backbone=dict(token_reduction=dict(
    type='dynamicvit', keep_ratio=0.7, layers=None, ratio_weight=2.0,
    distill_weight=0.5)))
