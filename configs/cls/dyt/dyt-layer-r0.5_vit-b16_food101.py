# DyT layer dispatch (Table 1), r=0.5, d=64, ViT-B/16, Food-101
_base_ = ['./dyt-r0.5_vit-b16_food101.py']
model = dict(backbone=dict(dispatch='layer'), rate_loss=dict(target_rate=0.5))
