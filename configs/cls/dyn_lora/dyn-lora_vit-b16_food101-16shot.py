# Dyn-LoRA (LoRA r=8 on q and v), T=3 S=4, ViT-B/16, Food-101 16-shot
_base_ = [
    './_base_/dyn-lora_vit-b16.py', '../dyn_adapter/_base_/fewshot_food101.py',
    '../_base_/schedules/vtab1k_adamw_100e_warmup10.py'
]
model = dict(
    num_classes=101,
    loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'))
