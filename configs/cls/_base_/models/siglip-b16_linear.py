# SigLIP ViT-B/16 (WebLI, 224 px) image tower as a frozen feature extractor +
# linear head: no class token, the release's attention-pooling head (MAP,
# out_type='map', frozen with the tower) gives the 768-wide image feature;
# normalisation to [-1, 1] (mean = std = 127.5, RGB). The root of every
# SigLIP-B/16 model variant.
_base_ = ['./vit-b16_linear.py']
model = dict(
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        to_rgb=True),
    backbone=dict(
        class_token=False,
        out_type='map',
        pretrained='hf-hub:timm/vit_base_patch16_siglip_224.webli'))
