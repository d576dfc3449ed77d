# DyT with MoE-adapter, N=4 experts (Table 4), r=0.5, d=64, ViT-B/16, CIFAR-100
_base_ = ['./dyt-r0.5_vit-b16_cifar100.py']
model = dict(backbone=dict(num_experts=4))
