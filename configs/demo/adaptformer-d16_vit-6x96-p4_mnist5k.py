# Demo: AdaptFormer (adapter d=16 beside every MLP) on the Fashion-MNIST ViT (6x96, patch 4), MNIST-5k
_base_ = ['./_base_/adapt_mnist5k.py']
model = dict(backbone=dict(adapter_dim=16))
