# DyT (MLP dispatch, r=0.5, adapter d=64), Swin-B, Food-101 (Table 11)
_base_ = [
    '../_base_/models/swin-b_dyt.py', '../_base_/datasets/food101_bs128_rrc.py',
    '../_base_/schedules/adamw_bs1024_100e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=101), rate_loss=dict(target_rate=0.5))
# Swin checkpoints are trained on ImageNet-normalised inputs
data_preprocessor = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
