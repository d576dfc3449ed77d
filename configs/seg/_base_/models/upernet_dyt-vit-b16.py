# DyT (MLP dispatch, adapter d=64, target rate r=0.5) ViT-B/16 in dense form
# (patch features of blocks 3/5/7/11), a BEiT-style pyramid at strides
# 4/8/16/32 (mmseg Feature2Pyramid: 2x deconv twice / deconv / identity /
# max-pool) and UperNet (channels 768) + FCN auxiliary head (DyT Sec. 4.6).
# The baselines override the backbone settings and drop the rate loss.
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='DyTEncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(512, 512)),
    backbone=dict(
        type='DyTVisionTransformer',
        arch='b',
        img_size=512,
        patch_size=16,
        dispatch='mlp',
        adapter_dim=64,
        adapter_scale=0.1,
        num_experts=1,
        tau=5.0,
        freeze_pretrained=True,
        out_type='featmap',
        out_indices=(3, 5, 7, 11),
        final_norm=False,
        drop_path_rate=0.1,
        skip_inactive=True,
        pretrained='data/pretrained/vit-b16_in21k.npz'),
    neck=dict(type='Feature2Pyramid', embed_dim=768, rescales=[4, 2, 1, 0.5],
              norm_cfg=norm_cfg),
    decode_head=dict(
        type='UPerHead',
        in_channels=[768, 768, 768, 768],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=768,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=768,
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
