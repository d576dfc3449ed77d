# Dyn-Adapter (Houlsby adapter d=8), T=3 S=4, ViT-B/16, Flowers102 16-shot
_base_ = [
    './_base_/dyn-adapter_vit-b16.py', '../dyn_adapter/_base_/fewshot_flowers102.py',
    '../_base_/schedules/vtab1k_adamw_100e_warmup10.py'
]
model = dict(
    num_classes=102,
    loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'))
