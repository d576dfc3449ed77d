# Full tuning (dense ViT-L/16: the FLOPs reference), Food-101 (Table 12)
_base_ = [
    '../_base_/models/vit-l16_full.py', '../_base_/datasets/food101_bs128_rrc.py',
    '../_base_/schedules/adamw_bs1024_100e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=101))
# 1/10 of the base learning rate (DyT App. A.2)
optim_wrapper = dict(optimizer=dict(lr=1e-4 * 1024 / 256))
