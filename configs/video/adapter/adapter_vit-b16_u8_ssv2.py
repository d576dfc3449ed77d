# Adapter (Houlsby, d=8), ViT-B/16 + cross-attention head, SSv2 8 uniform frames (Dyn-Adapter Table 7 baseline)
_base_ = [
    '../_base_/models/dyt_vit-b16.py',
    '../_base_/datasets/ssv2_u8.py',
    '../_base_/schedules/adamw_cosine_50e.py',
    '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(dispatch=None, adapter_dim=None,
                  petl=dict(type='houlsby', dim=8, scale=1.0, dropout=0.1)),
    rate_loss=None,
    cls_head=dict(num_classes=174))
