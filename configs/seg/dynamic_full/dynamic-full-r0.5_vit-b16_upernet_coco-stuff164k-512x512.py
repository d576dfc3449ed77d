# Dynamic full tuning (DyT dispatch, all ViT weights trained, lr / 10), ViT-B/16 + UperNet, COCO-Stuff164k 80k iters, 512x512
_base_ = [
    '../_base_/models/upernet_dyt-vit-b16.py',
    '../_base_/datasets/coco-stuff164k.py',
    '../_base_/schedules/adamw_cosine_80k.py',
    '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(freeze_pretrained=False),
    decode_head=dict(num_classes=171),
    auxiliary_head=dict(num_classes=171))
optim_wrapper = dict(optimizer=dict(lr=0.0001))
