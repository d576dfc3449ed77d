# DyT r=0.5 + ToMe (r=8: MLP dispatch on the merged tokens, DyT poster Table 5), d=64, ViT-B/16, CIFAR-100
_base_ = ['./dyt-r0.5_vit-b16_cifar100.py']
model = dict(backbone=dict(token_reduction=dict(type='tome', r=8)))
