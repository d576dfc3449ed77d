# DyT layer dispatch (Table 1), r=0.5, d=64, ViT-B/16, SVHN
_base_ = ['./dyt-r0.5_vit-b16_svhn.py']
model = dict(backbone=dict(dispatch='layer'), rate_loss=dict(target_rate=0.5))
