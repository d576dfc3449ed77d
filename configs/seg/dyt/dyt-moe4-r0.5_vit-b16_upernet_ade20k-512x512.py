# DyT MoE-adapter (N=4 experts, d=64, r=0.5), ViT-B/16 + UperNet, ADE20K 160k iters, 512x512
_base_ = [
    '../_base_/models/upernet_dyt-vit-b16.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/schedules/adamw_cosine_160k.py',
    '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(num_experts=4))
