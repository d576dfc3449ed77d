# DyT attn+mlp dispatch (Table 1), r=0.5, d=64, ViT-B/16, CIFAR-100
_base_ = ['./dyt-r0.5_vit-b16_cifar100.py']
model = dict(backbone=dict(dispatch='attn_mlp'), rate_loss=dict(target_rate=0.5))
