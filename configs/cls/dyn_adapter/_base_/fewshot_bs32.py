# 16-shot fine-grained classification (NOAH's few-shot split files, Dyn-Adapter
# Table 4): data_root/<dataset>/images/..., annotation lists `path label` in
# data_root/<dataset>/annotations/. The dataset is `dataset_name` in the
# three dataloaders' data_root (fewshot_<dataset>.py) plus `model.num_classes`.
dataset_type = 'CustomDataset'
data_root = 'data/few-shot/food-101'
data_preprocessor = dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(224, 224), interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='images',
                 ann_file='annotations/train_meta.list.num_shot_16.seed_0',
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='images',
                 ann_file='annotations/val_meta.list', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
test_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='images',
                 ann_file='annotations/test_meta.list', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = [dict(type='Accuracy', topk=(1, )), dict(type='EarlyExitMetric')]
test_evaluator = val_evaluator
