# Dyn-RepAdapter for video (Dyn-Adapter Table 7): exits after blocks 3, 6, 9, 12 of the
# per-frame ViT-B/16, each a cross-attention query head (MLP on the shallow half, linear on
# the deep half), RepAdapter d=8 before qkv and fc1, stage dropout 0.5 / 0.1, loss priority,
# gradient masks p_m=0.1; SSv2 8 uniform frames. Thresholds default to 1.0 (the last head)
# until a budget config calibrates them; calibration reads a held-out part of the training
# list (`sthv2_calib_list_videos.txt`, e.g. 1 % of train), testing the official val list.
_base_ = [
    '../../_base_/datasets/ssv2_u8.py',
    '../../_base_/schedules/adamw_cosine_50e.py',
    '../../_base_/default_runtime.py'
]
model = dict(
    type='EarlyExitRecognizer3D',
    backbone=dict(
        type='FrameDyTVisionTransformer',
        arch='b',
        img_size=224,
        patch_size=16,
        dispatch=None,
        adapter_dim=None,
        petl=dict(type='rep_adapter', dim=8, groups=2, scale=1.0, dropout=0.1),
        freeze_pretrained=True,
        pretrained='data/pretrained/vit-b16_in21k.npz'),
    num_classes=174,
    num_heads=12,
    exit_interval=3,
    stage_dropout=dict(shallow=0.5, deep=0.1),
    loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        format_shape='NCTHW'))
val_dataloader = dict(dataset=dict(ann_file='data/sthv2/sthv2_calib_list_videos.txt',
                                   data_prefix=dict(video='data/sthv2/videos')))
val_evaluator = [dict(type='AccMetric'), dict(type='EarlyExitMetric')]
test_evaluator = val_evaluator
custom_hooks = [
    dict(type='LossPriorityHook', shallow_start=0.1, deep_start=1.0, meet=0.5,
         policy='cosine'),
    dict(type='GradientMaskHook', mask_prob=0.1),
    dict(type='MergePETLHook'),
    # Calibrates the thresholds on the calibration list before testing when the
    # config sets `exit_budget` (the *-b50 / *-b70 configs); a no-op otherwise.
    dict(type='ExitCalibrationHook'),
]
