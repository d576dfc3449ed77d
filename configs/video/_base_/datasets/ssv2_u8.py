# Something-Something V2 as mmaction2 VideoDataset lists (`path label` per
# line). DyT Table 8: 8 frames sampled uniformly over the whole video,
# RandomResizedCrop to 224, RandAugment, no flip (labels such as "left to
# right" depend on the direction); test 3 spatial x 1 temporal views.
# RandAugment as the reference code: timm's rand-m7-n4-mstd0.5-inc1 on the
# decoded frames, the same draws on every frame (ClipRandAugment, docs/video.md).
dataset_type = 'VideoDataset'
data_root = 'data/sthv2/videos'
data_root_val = 'data/sthv2/videos'
ann_file_train = 'data/sthv2/sthv2_train_list_videos.txt'
ann_file_val = 'data/sthv2/sthv2_val_list_videos.txt'
ann_file_test = 'data/sthv2/sthv2_val_list_videos.txt'

train_pipeline = [
    dict(type='CheckedDecordInit'),
    dict(type='UniformSample', clip_len=8, num_clips=1),
    dict(type='CheckedDecordDecode'),
    # timm's increasing op set, 4 ops, magnitude N(7, 0.5) of 10 per op, fill 128
    dict(type='ClipRandAugment', policies='timm_increasing', num_policies=4,
         magnitude_level=7, magnitude_std=0.5, total_level=10,
         hparams=dict(pad_val=128, interpolation='bicubic')),
    dict(type='RandomResizedCrop'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='CheckedDecordInit'),
    dict(type='UniformSample', clip_len=8, num_clips=1, test_mode=True),
    dict(type='CheckedDecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='CheckedDecordInit'),
    dict(type='UniformSample', clip_len=8, num_clips=1, test_mode=True),
    dict(type='CheckedDecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

# 16 clips per GPU x 8 GPUs = batch 128 (Table 8).
train_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root_val),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    batch_size=4,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_test,
        data_prefix=dict(video=data_root_val),
        pipeline=test_pipeline,
        test_mode=True))

val_evaluator = [dict(type='AccMetric'), dict(type='EfficiencyMetric')]
test_evaluator = val_evaluator
