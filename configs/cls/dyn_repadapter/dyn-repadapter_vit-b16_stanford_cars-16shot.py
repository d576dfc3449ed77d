# Dyn-RepAdapter (RepAdapter d=8), T=3 S=4, ViT-B/16, StanfordCars 16-shot
_base_ = [
    './_base_/dyn-repadapter_vit-b16.py', '../dyn_adapter/_base_/fewshot_bs32.py',
    '../_base_/schedules/vtab1k_adamw_100e.py'
]
data_root = 'data/few-shot/stanford_cars'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
model = dict(num_classes=196)
val_evaluator = [dict(type='Accuracy', topk=(1, )), dict(type='EarlyExitMetric')]
test_evaluator = val_evaluator
