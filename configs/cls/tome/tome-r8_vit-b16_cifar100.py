# Full tuning + ToMe (r=8 merged per block, DyT poster Table 5), ViT-B/16, CIFAR-100
_base_ = ['../full/full_vit-b16_cifar100.py']
model = dict(backbone=dict(token_reduction=dict(type='tome', r=8)))
