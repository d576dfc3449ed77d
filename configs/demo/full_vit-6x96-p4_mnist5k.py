# Demo: full fine-tuning of the Fashion-MNIST ViT (6x96, patch 4) on MNIST-5k
_base_ = ['./_base_/adapt_mnist5k.py']
model = dict(backbone=dict(freeze_pretrained=False))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
