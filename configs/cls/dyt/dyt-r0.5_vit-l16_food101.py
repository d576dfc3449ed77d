# DyT (MLP dispatch, r=0.5, adapter d=64), ViT-L/16, Food-101 (Table 12)
_base_ = [
    '../_base_/models/vit-l16_dyt.py', '../_base_/datasets/food101_bs128_rrc.py',
    '../_base_/schedules/adamw_bs1024_100e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=101), rate_loss=dict(target_rate=0.5))
