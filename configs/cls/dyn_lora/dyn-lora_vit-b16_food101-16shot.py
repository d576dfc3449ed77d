# Dyn-LoRA (LoRA r=8 on qkv), T=3 S=4, ViT-B/16, Food-101 16-shot
_base_ = [
    './_base_/dyn-lora_vit-b16.py', '../dyn_adapter/_base_/fewshot_food101.py',
    '../_base_/schedules/vtab1k_adamw_100e.py'
]
model = dict(num_classes=101)
