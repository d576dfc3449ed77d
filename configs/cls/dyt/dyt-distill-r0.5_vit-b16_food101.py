# DyT with self-distillation from a dense teacher pass, r=0.5, d=64, ViT-B/16, Food-101
_base_ = ['./dyt-r0.5_vit-b16_food101.py']
model = dict(distill=dict(loss_weight=1.0, teacher_weight=1.0))
