# DyT (MLP dispatch, adapter d=64, target rate r=0.5) on a ViT-B/16 applied
# frame by frame, with a cross-attention query head (DyT Sec. 4.5). The
# baselines override the backbone settings and drop the rate loss.
model = dict(
    type='DyTRecognizer3D',
    backbone=dict(
        type='FrameDyTVisionTransformer',
        arch='b',
        img_size=224,
        patch_size=16,
        dispatch='mlp',
        adapter_dim=64,
        adapter_scale=0.1,
        num_experts=1,
        tau=5.0,
        freeze_pretrained=True,
        skip_inactive=True,
        pretrained='data/pretrained/vit-b16_in21k.npz'),
    cls_head=dict(
        type='CrossAttentionHead',
        num_classes=400,
        in_channels=768,
        num_heads=12,
        average_clips='prob'),
    rate_loss=dict(type='ActivationRateLoss', target_rate=0.5, loss_weight=2.0),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        format_shape='NCTHW'))
