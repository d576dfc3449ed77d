# ViT-B/16 with DyT's dispatchers (and adapters) but every weight trained:
# "dynamic full tuning" of DyT Table 6.
_base_ = ['./vit-b16_dyt.py']
model = dict(backbone=dict(freeze_pretrained=False))
