# DyT (MLP dispatch, adapter d=64, target rate r=0.5) Swin-B (window 7,
# ImageNet-22k 224) + UperNet, mmseg's Swin-UperNet recipe: the normed maps of
# the 4 stages (strides 4/8/16/32) straight into UperNet (channels 512) + FCN
# auxiliary head on stage 3; no Feature2Pyramid. Small maps are padded to
# whole windows (pad_small_map). The baselines override the backbone settings
# and drop the rate loss.
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='DyTEncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(512, 512)),
    backbone=dict(
        type='DyTSwinTransformer',
        arch='b',
        img_size=512,
        patch_size=4,
        window_size=7,
        dispatch='mlp',
        adapter_dim=64,
        adapter_scale=0.1,
        num_experts=1,
        tau=5.0,
        freeze_pretrained=True,
        out_type='featmap',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3,
        pad_small_map=True,
        skip_inactive=True,
        pretrained='data/pretrained/swin-b_in22k-224.pth'),
    decode_head=dict(
        type='UPerHead',
        in_channels=[128, 256, 512, 1024],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=512,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    rate_loss=dict(type='ActivationRateLoss', target_rate=0.5, loss_weight=2.0),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
