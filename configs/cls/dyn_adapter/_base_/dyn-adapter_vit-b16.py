# Dyn-Adapter (early exits) on ViT-B/16 (ImageNet-21k) with one sequential
# adapter (d=8) per block after mlp.fc2 (the paper's Adapter: 0.16 M, +0.03 G;
# targets=['proj', 'fc2'] is Houlsby's two per block): exits after blocks 3, 6,
# 9, 12 (T=3, S=4), MLP heads (width mlp_head_width(C, K)) on the shallow
# half, linear on the deep half; stage dropout 0.5 / 0.1; loss priority
# (lambda_shallow 0.1 -> 0.5, lambda_deep 1.0 -> 0.5); gradient masks p_m=0.1
# on the update itself (Dyn-Adapter Sec. 3-4); drop path 0.1 as RepAdapter's
# code [29]. Thresholds default to 1.0 (every sample takes the last head)
# until calibrate_exits.py sets them.
_base_ = ['../../_base_/default_runtime.py']
model = dict(
    type='EarlyExitClassifier',
    backbone=dict(
        type='DyTVisionTransformer',
        arch='b',
        img_size=224,
        patch_size=16,
        dispatch=None,
        adapter_dim=None,
        petl=dict(type='houlsby', dim=8, scale=1.0, dropout=0.1, targets=['fc2']),
        drop_path_rate=0.1,
        freeze_pretrained=True,
        pretrained='data/pretrained/vit-b16_in21k.npz'),
    num_classes=1000,
    exit_interval=3,
    heads=None,
    stage_dropout=dict(shallow=0.5, deep=0.1),
    thresholds=None,
    loss=dict(type='CrossEntropyLoss', loss_weight=1.0))
custom_hooks = [
    dict(type='LossPriorityHook', shallow_start=0.1, deep_start=1.0, meet=0.5,
         policy='cosine'),
    dict(type='GradientMaskHook', mask_prob=0.1),
    dict(type='MergePETLHook'),
    # Calibrates the thresholds on val before testing when the config sets
    # `exit_budget` (the *-b50 / *-b70 configs); a no-op otherwise.
    dict(type='ExitCalibrationHook'),
]
