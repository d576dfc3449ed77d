# LoRA baseline (one exit, last block) on a MAE ViT-B/16 (Dyn-Adapter Table 3), VTAB-1K (task cifar)
_base_ = ['./dyn-lora-mae_vit-b16_vtab1k.py']
model = dict(exit_layers=[12], heads=[dict(type='linear', norm=True)], stage_dropout=None)
custom_hooks = [dict(type='MergePETLHook')]
