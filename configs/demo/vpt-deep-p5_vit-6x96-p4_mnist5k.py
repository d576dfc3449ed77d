# Demo: VPT-deep with 5 prompt tokens per layer on the Fashion-MNIST ViT (6x96, patch 4), MNIST-5k
_base_ = ['./_base_/adapt_mnist5k.py']
model = dict(backbone=dict(num_prompts=5))
