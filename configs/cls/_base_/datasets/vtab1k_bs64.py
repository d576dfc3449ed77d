# VTAB-1K, one task: train on train800val200, evaluate on test; 224x224
# bicubic resize, no augmentation (DyT Table 5 / App. A.2), batch 64.
# The task is `dataset.task` of the three dataloaders plus `model.head.
# num_classes` (tools/analysis_tools/vtab_table.py sets all four).
dataset_type = 'VTAB1k'
data_root = 'data/vtab-1k'
task = 'cifar'
data_preprocessor = dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(224, 224), interpolation='bicubic'),
    dict(type='PackInputs'),
]
test_pipeline = train_pipeline

train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, task=task,
                 split='train800val200', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, task=task, split='test',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = [dict(type='Accuracy', topk=(1, )), dict(type='EfficiencyMetric')]
test_dataloader = val_dataloader
test_evaluator = val_evaluator
