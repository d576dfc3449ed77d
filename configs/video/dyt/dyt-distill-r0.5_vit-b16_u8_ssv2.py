# DyT with self-distillation from a dense teacher pass (the reference code's recipe), r=0.5, d=64, ViT-B/16 + cross-attention head, SSv2 8 uniform frames
_base_ = ['./dyt-r0.5_vit-b16_u8_ssv2.py']
model = dict(distill=dict(loss_weight=1.0, teacher_weight=1.0))
