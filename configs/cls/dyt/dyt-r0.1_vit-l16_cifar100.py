# DyT (MLP dispatch, r=0.1, adapter d=64), ViT-L/16, CIFAR-100 (Table 12)
_base_ = [
    '../_base_/models/vit-l16_dyt.py', '../_base_/datasets/cifar100_bs128_rrc.py',
    '../_base_/schedules/adamw_bs1024_100e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=100), rate_loss=dict(target_rate=0.1))
