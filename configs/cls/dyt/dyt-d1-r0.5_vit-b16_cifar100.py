# DyT bottleneck d=1 (Table 3), r=0.5, ViT-B/16, CIFAR-100
_base_ = ['./dyt-r0.5_vit-b16_cifar100.py']
model = dict(backbone=dict(adapter_dim=1))
