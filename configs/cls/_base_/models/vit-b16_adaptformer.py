# ViT-B/16 + AdaptFormer: a parallel bottleneck adapter beside every MLP.
_base_ = ['./vit-b16_linear.py']
model = dict(backbone=dict(adapter_dim=64))
