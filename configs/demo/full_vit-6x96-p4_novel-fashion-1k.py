# Demo: full fine-tuning of the Fashion-MNIST ViT (6x96, patch 4) on 5 unseen Fashion-MNIST classes, 1k examples
_base_ = ['./_base_/adapt_novel-fashion-1k.py']
model = dict(backbone=dict(freeze_pretrained=False))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
