# Demo: dynamic full tuning (DyT dispatchers, every weight trained, r=0.5) on the Fashion-MNIST ViT (6x96, patch 4), 5 unseen Fashion-MNIST classes, 1k examples
_base_ = ['./dyt-r0.5_vit-6x96-p4_novel-fashion-1k.py']
model = dict(backbone=dict(freeze_pretrained=False))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
