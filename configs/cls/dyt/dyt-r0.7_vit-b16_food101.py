# DyT (MLP dispatch, r=0.7, d=64), ViT-B/16, Food-101
_base_ = ['./dyt-r0.5_vit-b16_food101.py']
model = dict(rate_loss=dict(target_rate=0.7))
