# Dyn-RepAdapter on a MAE ViT-B/16 (Dyn-Adapter Table 3), VTAB-1K (task cifar; others via --cfg-options)
_base_ = ['./dyn-repadapter_vit-b16_vtab1k.py']
model = dict(backbone=dict(pretrained='data/pretrained/mae_pretrain_vit_base.pth'), feature='avg_featmap')
