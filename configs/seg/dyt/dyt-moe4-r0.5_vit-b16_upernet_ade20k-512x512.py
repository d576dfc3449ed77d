# DyT MoE-adapter (N=4 experts, d=64, r=0.5), ViT-B/16 (+ relative position bias) + UperNet, ADE20K 160k iters, 512x512
_base_ = [
    '../_base_/models/upernet_dyt-vit-b16.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/schedules/adamw_cosine_160k.py',
    '../_base_/default_runtime.py'
]
# The reference DyT code's segmentation ViT: a zero-initialised trainable relative
# position bias per block (BEiT-style, 0.57 M at 512x512; the paper does not say).
model = dict(
    backbone=dict(num_experts=4, rel_pos_bias=True))
