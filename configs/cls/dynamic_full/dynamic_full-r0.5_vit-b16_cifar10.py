# Dynamic full tuning (DyT dispatch r=0.5, every weight trained), ViT-B/16, CIFAR-10 (Table 10)
_base_ = [
    '../_base_/models/vit-b16_dynamic-full.py', '../_base_/datasets/cifar10_bs128_rrc.py',
    '../_base_/schedules/adamw_bs1024_100e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=10))
# 1/10 of the base learning rate (DyT App. A.2)
optim_wrapper = dict(optimizer=dict(lr=1e-4 * 1024 / 256))
