# AdaptFormer (d=64) + DynamicViT (rho=0.7 before blocks 4, 7, 10, DyT poster Table 5), frozen ViT-B/16, VTAB-1K (task via --cfg-options)
_base_ = [
    '../_base_/models/vit-b16_adaptformer.py', '../_base_/datasets/vtab1k_bs64.py',
    '../_base_/schedules/vtab1k_adamw_100e.py', '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(adapter_scale=1.0, token_reduction=dict(
        type='dynamicvit', keep_ratio=0.7, layers=None, ratio_weight=2.0,
        distill_weight=0.5)),
    head=dict(num_classes=100))
