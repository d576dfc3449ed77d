# Linear probing (frozen DINOv2-B/14, trained pyramid + heads), DINOv2-B/14 + UperNet, ADE20K 160k iters, 512x512
_base_ = [
    '../_base_/models/upernet_dyt-dinov2-b14.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/schedules/adamw_cosine_160k.py',
    '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(dispatch=None, adapter_dim=None),
    rate_loss=None)
