# ViT-B/16 (ImageNet-21k) as a frozen feature extractor + linear head: the
# linear probe, and the root of every ViT-B/16 model variant.
model = dict(
    type='DyTImageClassifier',
    backbone=dict(
        type='DyTVisionTransformer',
        arch='b',
        img_size=224,
        patch_size=16,
        dispatch=None,
        adapter_dim=None,
        adapter_scale=0.1,
        freeze_pretrained=True,
        out_type='cls_token',
        pretrained='data/pretrained/vit-b16_in21k.npz'),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
