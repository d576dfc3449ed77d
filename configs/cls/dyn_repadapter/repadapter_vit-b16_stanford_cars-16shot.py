# RepAdapter d=8 baseline (one exit, last block), ViT-B/16, StanfordCars 16-shot
_base_ = [
    './_base_/dyn-repadapter_vit-b16.py', '../dyn_adapter/_base_/fewshot_bs32.py',
    '../_base_/schedules/vtab1k_adamw_100e.py'
]
data_root = 'data/few-shot/stanford_cars'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
model = dict(
    exit_layers=[12], heads=[dict(type='linear', norm=False)], stage_dropout=None, num_classes=196)
custom_hooks = [dict(type='MergePETLHook')]
val_evaluator = [dict(type='Accuracy', topk=(1, )), dict(type='EarlyExitMetric')]
test_evaluator = val_evaluator
