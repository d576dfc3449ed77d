# DyT attn+mlp dispatch (Table 1), r=0.7, d=64, ViT-B/16, SVHN
_base_ = ['./dyt-r0.5_vit-b16_svhn.py']
model = dict(backbone=dict(dispatch='attn_mlp'), rate_loss=dict(target_rate=0.7))
