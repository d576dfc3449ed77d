# Demo: DyT (MLP dispatch, r=0.7, adapter d=16) on the Fashion-MNIST ViT (6x96, patch 4), 5 unseen Fashion-MNIST classes, 1k examples
_base_ = ['./dyt-r0.5_vit-6x96-p4_novel-fashion-1k.py']
model = dict(rate_loss=dict(target_rate=0.7))
