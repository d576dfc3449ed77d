# DINOv2 ViT-B/14 + AdaptFormer: a parallel bottleneck adapter beside every MLP.
_base_ = ['./dinov2-b14_linear.py']
model = dict(backbone=dict(adapter_dim=64))
