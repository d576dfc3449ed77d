# DyT with self-distillation from a dense teacher pass and the reference code's image augmentation (RandomResizedCrop + horizontal flip), r=0.5, d=64, ViT-B/16, SVHN
_base_ = [
    '../_base_/models/vit-b16_dyt.py', '../_base_/datasets/svhn_bs128_rrc-flip.py',
    '../_base_/schedules/adamw_bs1024_100e.py', '../_base_/default_runtime.py'
]
model = dict(head=dict(num_classes=10), distill=dict(loss_weight=1.0, teacher_weight=1.0))
