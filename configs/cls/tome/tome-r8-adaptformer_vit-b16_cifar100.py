# AdaptFormer (d=64) + ToMe (r=8, DyT poster Table 5), frozen ViT-B/16, CIFAR-100
_base_ = ['../adaptformer/adaptformer-d64_vit-b16_cifar100.py']
model = dict(backbone=dict(token_reduction=dict(type='tome', r=8)))
