# cifar100_bs128_rrc.py with the reference DyT code's training augmentation:
# RandomResizedCrop + horizontal flip (DyT Table 7 lists RandomResizedCrop only).
_base_ = ['./cifar100_bs128_rrc.py']
train_pipeline = [
    dict(type='RandomResizedCrop', scale=224, interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
