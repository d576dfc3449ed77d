# AdaptFormer (parallel adapter d=64 on every token), CLIP ViT-B/16 + cross-attention head, K400 8x16x1
_base_ = [
    '../_base_/models/dyt_clip-b16.py',
    '../_base_/datasets/k400_8x16x1.py',
    '../_base_/schedules/adamw_cosine_12e.py',
    '../_base_/default_runtime.py'
]
model = dict(backbone=dict(dispatch=None), rate_loss=None)
