# DyT (MLP dispatch, r=0.9, adapter d=64), ViT-L/16, SVHN (Table 12)
_base_ = [
    '../_base_/models/vit-l16_dyt.py', '../_base_/datasets/svhn_bs128_rrc.py',
    '../_base_/schedules/adamw_bs1024_100e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=10), rate_loss=dict(target_rate=0.9))
