# LoRA baseline (one exit, last block) on a MoCo v3 ViT-B/16 (Dyn-Adapter Table 3), VTAB-1K (task cifar)
_base_ = ['./dyn-lora-mocov3_vit-b16_vtab1k.py']
model = dict(exit_layers=[12], heads=[dict(type='linear', norm=False)], stage_dropout=None)
custom_hooks = [dict(type='MergePETLHook')]
