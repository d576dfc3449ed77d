# DyT (MLP dispatch, adapter d=64, target rate r=0.5) DINOv2 ViT-B/14 in dense
# form: the ViT-B/16 UperNet of upernet_dyt-vit-b16.py (patch features of
# blocks 3/5/7/11, Feature2Pyramid at 4x/2x/1x/0.5x, UperNet + FCN auxiliary
# head) with DINOv2's patch 14, LayerScale and ImageNet normalisation.
# img_size=518: the release's 37x37 position grid loads as is, and a 512x512
# crop, zero-padded by the backbone to 518 (37x37 patches), matches it without
# interpolation; the pyramid is 148/74/37/18 and the logits are resized to
# the 512 crop.
_base_ = ['./upernet_dyt-vit-b16.py']
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375]),
    backbone=dict(
        img_size=518,
        patch_size=14,
        layer_scale_init_value=1e-5,
        pretrained='hf-hub:timm/vit_base_patch14_dinov2.lvd142m'))
