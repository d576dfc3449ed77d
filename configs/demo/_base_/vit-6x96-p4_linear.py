# The demo's pretrained ViT (5 Fashion-MNIST classes, demo stage 1) as a frozen feature
# extractor + linear head: the linear probe, and the root of every demo model.
model = dict(
    type='DyTImageClassifier',
    backbone=dict(
        type='DyTVisionTransformer',
        arch=dict(embed_dims=96, num_layers=6, num_heads=3,
                  feedforward_channels=384),
        img_size=28,
        patch_size=4,
        dispatch=None,
        adapter_dim=None,
        adapter_scale=1.0,
        freeze_pretrained=True,
        out_type='cls_token',
        pretrained='work_dirs/demo/pretrain/vit-6x96-p4_fashion-mnist-seen5.pth'),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=10, in_channels=96,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
