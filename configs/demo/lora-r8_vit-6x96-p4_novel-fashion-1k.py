# Demo: LoRA rank 8 on every qkv of the Fashion-MNIST ViT (6x96, patch 4), 5 unseen Fashion-MNIST classes, 1k examples
_base_ = ['./_base_/adapt_novel-fashion-1k.py']
model = dict(backbone=dict(petl=dict(type='lora', rank=8, alpha=8.0, targets=['qkv'])))
