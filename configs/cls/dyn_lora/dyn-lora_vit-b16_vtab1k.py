# Dyn-LoRA (LoRA r=8 on q and v), T=3 S=4, ViT-B/16, VTAB-1K (task cifar; others via --cfg-options, docs/dyn_adapter.md)
_base_ = [
    './_base_/dyn-lora_vit-b16.py', '../_base_/datasets/vtab1k_bs64.py',
    '../_base_/schedules/vtab1k_adamw_100e_warmup10.py'
]
# Train on train800, calibrate the exit thresholds on val200, test on test
# (the base's test_dataloader).
train_dataloader = dict(dataset=dict(split='train800'))
val_dataloader = dict(dataset=dict(split='val200'))
model = dict(num_classes=100)
val_evaluator = [dict(type='Accuracy', topk=(1, )), dict(type='EarlyExitMetric')]
test_evaluator = val_evaluator
