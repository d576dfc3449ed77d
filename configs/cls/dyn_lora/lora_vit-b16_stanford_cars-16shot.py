# LoRA r=8 on q and v baseline (one exit, last block), ViT-B/16, StanfordCars 16-shot
_base_ = ['./dyn-lora_vit-b16_stanford_cars-16shot.py']
model = dict(exit_layers=[12], heads=[dict(type='linear', norm=False)], stage_dropout=None)
custom_hooks = [dict(type='MergePETLHook')]
