# AdaptFormer (d=64) + EViT (keep rate 0.7 at blocks 4, 7, 10, DyT poster Table 5), frozen ViT-B/16, CIFAR-100
_base_ = ['../adaptformer/adaptformer-d64_vit-b16_cifar100.py']
model = dict(backbone=dict(token_reduction=dict(type='evit', keep_rate=0.7, layers=None)))
