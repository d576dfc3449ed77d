# DINOv2 ViT-B/14 (LVD-142M, LayerScale) as a frozen feature extractor + linear
# head: the linear probe, and the root of every DINOv2-B/14 model variant. The
# 518-px release position embedding (37x37) is interpolated to img_size on load;
# ImageNet normalisation (RGB). With registers (the `_reg4_` release): add
# num_registers=4 and pretrained='hf-hub:timm/vit_base_patch14_reg4_dinov2.lvd142m'.
_base_ = ['./vit-b16_linear.py']
model = dict(
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        patch_size=14,
        layer_scale_init_value=1e-5,
        pretrained='hf-hub:timm/vit_base_patch14_dinov2.lvd142m'))
