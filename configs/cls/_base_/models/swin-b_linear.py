# Swin-B (patch 4, window 7, ImageNet-22k 224) as a frozen feature extractor,
# average-pooled last stage + linear head: the root of every Swin-B variant.
model = dict(
    type='DyTImageClassifier',
    backbone=dict(
        type='DyTSwinTransformer',
        arch='b',
        img_size=224,
        patch_size=4,
        window_size=7,
        dispatch=None,
        adapter_dim=None,
        adapter_scale=0.1,
        freeze_pretrained=True,
        out_type='avg_featmap',
        out_indices=(3, ),
        pretrained='data/pretrained/swin-b_in22k-224.pth'),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=1024,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
