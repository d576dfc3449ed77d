# DyT with MoE-adapter, N=4 experts (Table 4), r=0.5, d=64, ViT-B/16, Food-101
_base_ = ['./dyt-r0.5_vit-b16_food101.py']
model = dict(backbone=dict(num_experts=4))
