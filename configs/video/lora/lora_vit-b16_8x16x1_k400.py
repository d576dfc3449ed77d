# LoRA (rank 8 on qkv), ViT-B/16 + cross-attention head, K400 8x16x1
_base_ = [
    '../_base_/models/dyt_vit-b16.py',
    '../_base_/datasets/k400_8x16x1.py',
    '../_base_/schedules/adamw_cosine_12e.py',
    '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(dispatch=None, adapter_dim=None,
                  petl=dict(type='lora', rank=8, alpha=8.0, targets=['qkv'])),
    rate_loss=None)
