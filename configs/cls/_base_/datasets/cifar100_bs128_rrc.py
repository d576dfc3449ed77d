# CIFAR-100 (mmpretrain's CIFAR100, python pickles in data/cifar100),
# RandomResizedCrop to 224 for training (DyT Table 7; *_rrc-flip.py adds the
# reference code's horizontal flip), 128 images per GPU.
dataset_type = 'CIFAR100'
data_root = 'data/cifar100'
# the pickled images are already RGB
data_preprocessor = dict(num_classes=100, mean=[127.5, 127.5, 127.5],
                         std=[127.5, 127.5, 127.5], to_rgb=False)

train_pipeline = [
    dict(type='RandomResizedCrop', scale=224, interpolation='bicubic'),
    dict(type='PackInputs'),
]
# Test: resize of the short side to 256 + centre crop 224, as the reference
# DyT code (the paper does not say).
test_pipeline = [
    dict(type='ResizeEdge', scale=256, edge='short', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
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
