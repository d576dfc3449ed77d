# DyT (MLP dispatch, r=0.7, d=64), ViT-B/16, CIFAR-100
_base_ = ['./dyt-r0.5_vit-b16_cifar100.py']
model = dict(rate_loss=dict(target_rate=0.7))
