# DyT r=0.5 + ToMe (r=8: MLP dispatch on the merged tokens, DyT poster Table 5), d=8, ViT-B/16, VTAB-1K
_base_ = ['./dyt-r0.5-d8_vit-b16_vtab1k.py']
model = dict(backbone=dict(token_reduction=dict(type='tome', r=8)))
