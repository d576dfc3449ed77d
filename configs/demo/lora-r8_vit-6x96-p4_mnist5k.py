# Demo: LoRA rank 8 on every qkv of the Fashion-MNIST ViT (6x96, patch 4), MNIST-5k
_base_ = ['./_base_/adapt_mnist5k.py']
model = dict(backbone=dict(lora_rank=8, lora_alpha=8.0))
