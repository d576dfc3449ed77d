# Dynamic full tuning (DyT dispatch, all ViT weights trained, lr / 10), ViT-B/16 + UperNet, ADE20K 160k iters, 512x512
_base_ = [
    '../_base_/models/upernet_dyt-vit-b16.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/schedules/adamw_cosine_160k.py',
    '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(freeze_pretrained=False))
optim_wrapper = dict(optimizer=dict(lr=0.0001))
