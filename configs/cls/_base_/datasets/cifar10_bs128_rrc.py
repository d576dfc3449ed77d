# CIFAR-10 (mmpretrain's CIFAR10, python pickles in data/cifar10),
# RandomResizedCrop to 224 for training (DyT Tables 7, 10), 128 images per GPU.
dataset_type = 'CIFAR10'
data_root = 'data/cifar10'
# the pickled images are already RGB
data_preprocessor = dict(num_classes=10, mean=[127.5, 127.5, 127.5],
                         std=[127.5, 127.5, 127.5], to_rgb=False)

train_pipeline = [
    dict(type='RandomResizedCrop', scale=224, interpolation='bicubic'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='Resize', scale=(224, 224), interpolation='bicubic'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = [dict(type='Accuracy', topk=(1, 5)), dict(type='EfficiencyMetric')]
test_dataloader = val_dataloader
test_evaluator = val_evaluator
