# AdaptFormer (parallel adapter d=64 on every token), CLIP ViT-B/16 + cross-attention head, SSv2 8 uniform frames
_base_ = [
    '../_base_/models/dyt_clip-b16.py',
    '../_base_/datasets/ssv2_u8.py',
    '../_base_/schedules/adamw_cosine_50e.py',
    '../_base_/default_runtime.py'
]
model = dict(backbone=dict(dispatch=None), rate_loss=None, cls_head=dict(num_classes=174))
