# DyT (MLP dispatch, adapter d=64, r=0.5), ViT-B/16 (+ relative position bias) + UperNet, COCO-Stuff164k 80k iters, 512x512
_base_ = [
    '../_base_/models/upernet_dyt-vit-b16.py',
    '../_base_/datasets/coco-stuff164k.py',
    '../_base_/schedules/adamw_cosine_80k.py',
    '../_base_/default_runtime.py'
]
# The reference DyT code's segmentation ViT: a zero-initialised trainable relative
# position bias per block (BEiT-style, 0.57 M at 512x512; the paper does not say).
model = dict(
    backbone=dict(rel_pos_bias=True),
    decode_head=dict(num_classes=171),
    auxiliary_head=dict(num_classes=171))
