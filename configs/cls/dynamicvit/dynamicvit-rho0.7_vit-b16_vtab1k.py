# Full tuning + DynamicViT (rho=0.7 before blocks 4, 7, 10, DyT poster Table 5), ViT-B/16, VTAB-1K (task via --cfg-options)
_base_ = [
    '../_base_/models/vit-b16_full.py', '../_base_/datasets/vtab1k_bs64.py',
    '../_base_/schedules/vtab1k_adamw_100e.py', '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(token_reduction=dict(
        type='dynamicvit', keep_ratio=0.7, layers=None, ratio_weight=2.0, distill_weight=0.5)),
    head=dict(num_classes=100))
# 1/10 of the PEFT learning rate for full tuning (DyT App. A.2)
optim_wrapper = dict(optimizer=dict(lr=1e-4))
