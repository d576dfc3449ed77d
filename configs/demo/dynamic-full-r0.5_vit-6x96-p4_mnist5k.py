# Demo: dynamic full tuning (DyT dispatchers, every weight trained, r=0.5) on the Fashion-MNIST ViT (6x96, patch 4), MNIST-5k
_base_ = ['./dyt-r0.5_vit-6x96-p4_mnist5k.py']
model = dict(backbone=dict(freeze_pretrained=False))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
