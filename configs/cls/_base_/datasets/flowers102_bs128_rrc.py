# Oxford Flowers-102 (mmpretrain Flowers102: jpg/image_*.jpg + imagelabels.mat + setid.mat):
# the full trainval split for training, test for testing, with Food-101's recipe
# (DyT Tables 7, 10): RandomResizedCrop to 224 for training, short side 256 +
# center crop 224 for testing, 128 images per GPU.
dataset_type = 'Flowers102'
data_root = 'data/flowers102'
data_preprocessor = dict(num_classes=102, mean=[127.5, 127.5, 127.5],
                         std=[127.5, 127.5, 127.5], to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, interpolation='bicubic'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='trainval',
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
