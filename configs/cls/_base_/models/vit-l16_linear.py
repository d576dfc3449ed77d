# ViT-L/16 (ImageNet-21k) as a frozen feature extractor + linear head: the
# root of every ViT-L/16 variant.
_base_ = ['./vit-b16_linear.py']
model = dict(
    backbone=dict(arch='l', pretrained='data/pretrained/vit-l16_in21k.npz'),
    head=dict(in_channels=1024))
