# DyT (MLP dispatch, r=0.5, adapter d=64), ViT-B/16, CIFAR-10 (Table 10)
_base_ = [
    '../_base_/models/vit-b16_dyt.py', '../_base_/datasets/cifar10_bs128_rrc.py',
    '../_base_/schedules/adamw_bs1024_100e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=10))
