# Dyn-RepAdapter (RepAdapter d=8), T=3 S=4, ViT-B/16, OxfordPets 16-shot
_base_ = [
    './_base_/dyn-repadapter_vit-b16.py', '../dyn_adapter/_base_/fewshot_oxford_pets.py',
    '../_base_/schedules/vtab1k_adamw_100e_warmup10.py'
]
model = dict(
    num_classes=37,
    loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'))
