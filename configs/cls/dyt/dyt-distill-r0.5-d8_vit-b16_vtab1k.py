# DyT with self-distillation from a dense teacher pass and the reference code's VTAB-1K schedule (10 warm-up epochs, min lr 1e-5), r=0.5, d=8, ViT-B/16, VTAB-1K (task cifar)
_base_ = [
    '../_base_/models/vit-b16_dyt.py', '../_base_/datasets/vtab1k_bs64.py',
    '../_base_/schedules/vtab1k_adamw_100e_warmup10.py', '../_base_/default_runtime.py'
]
model = dict(
    backbone=dict(adapter_dim=8, adapter_scale=1.0),
    head=dict(num_classes=100),
    rate_loss=dict(target_rate=0.5),
    distill=dict(loss_weight=1.0, teacher_weight=1.0))
