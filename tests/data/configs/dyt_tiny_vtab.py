# Tiny DyT (2 blocks, 48 channels, 32x32 input) on a VTAB-1K-format task, iteration based:
# the reliability tests
_base_ = ['../../../configs/cls/dyt/dyt-r0.5-d8_vit-b16_vtab1k.py']
# The tests set data_root (a task folder they write) and work_dir.
data_root = None
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=96),
        img_size=32, patch_size=8, pretrained=None),
    head=dict(num_classes=4, in_channels=48))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(32, 32), interpolation='bicubic'),
    dict(type='PackInputs'),
]
_dataset = dict(data_root=data_root, task=None, num_classes=4)
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(_dataset, split='train800val200', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(_dataset, split='test', pipeline=train_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=1e-2))
# An explicit end: the scheduler's state (end included) is part of a checkpoint.
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=6, eta_min=0.0, by_epoch=False, begin=0, end=6)]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=4, val_interval=1000)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=1000, by_epoch=False, save_last=True, max_keep_ckpts=-1))
log_processor = dict(by_epoch=False, window_size=1)
custom_hooks = [dict(type='ActivationLoggerHook'), dict(type='RNGStateHook'),
                dict(type='NaNGuardHook')]
randomness = dict(seed=0, deterministic=True)
