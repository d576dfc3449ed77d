# Demo: linear probe of the Fashion-MNIST ViT (6x96, patch 4) on MNIST-5k
_base_ = ['./_base_/adapt_mnist5k.py']
