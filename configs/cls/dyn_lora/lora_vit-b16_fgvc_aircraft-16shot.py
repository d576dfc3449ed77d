# LoRA r=8 on qkv baseline (one exit, last block), ViT-B/16, FGVCAircraft 16-shot
_base_ = [
    './_base_/dyn-lora_vit-b16.py', '../dyn_adapter/_base_/fewshot_bs32.py',
    '../_base_/schedules/vtab1k_adamw_100e.py'
]
data_root = 'data/few-shot/fgvc-aircraft'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
model = dict(
    exit_layers=[12], heads=[dict(type='linear', norm=False)], stage_dropout=None, num_classes=100)
custom_hooks = [dict(type='MergePETLHook')]
val_evaluator = [dict(type='Accuracy', topk=(1, )), dict(type='EarlyExitMetric')]
test_evaluator = val_evaluator
