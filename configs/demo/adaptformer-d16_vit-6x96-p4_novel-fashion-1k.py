# Demo: AdaptFormer (adapter d=16 beside every MLP) on the Fashion-MNIST ViT (6x96, patch 4), 5 unseen Fashion-MNIST classes, 1k examples
_base_ = ['./_base_/adapt_novel-fashion-1k.py']
model = dict(backbone=dict(adapter_dim=16))
