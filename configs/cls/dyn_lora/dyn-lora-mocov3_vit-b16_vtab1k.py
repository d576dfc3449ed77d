# Dyn-LoRA on a MoCo v3 ViT-B/16 (Dyn-Adapter Table 3), VTAB-1K (task cifar; others via --cfg-options)
_base_ = ['./dyn-lora_vit-b16_vtab1k.py']
model = dict(backbone=dict(pretrained='data/pretrained/mocov3_vit-b16_300ep.pth.tar'))
