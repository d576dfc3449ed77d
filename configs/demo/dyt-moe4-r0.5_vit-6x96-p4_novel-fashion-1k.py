# Demo: DyT with a 4-expert MoE-adapter (r=0.5, d=16) on the Fashion-MNIST ViT (6x96, patch 4), 5 unseen Fashion-MNIST classes, 1k examples
_base_ = ['./dyt-r0.5_vit-6x96-p4_novel-fashion-1k.py']
model = dict(backbone=dict(num_experts=4))
