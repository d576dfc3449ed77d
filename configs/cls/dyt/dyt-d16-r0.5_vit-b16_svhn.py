# DyT bottleneck d=16 (Table 3), r=0.5, ViT-B/16, SVHN
_base_ = ['./dyt-r0.5_vit-b16_svhn.py']
model = dict(backbone=dict(adapter_dim=16))
