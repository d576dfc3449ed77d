# DyT bottleneck d=4 (Table 3), r=0.5, ViT-B/16, Food-101
_base_ = ['./dyt-r0.5_vit-b16_food101.py']
model = dict(backbone=dict(adapter_dim=4))
