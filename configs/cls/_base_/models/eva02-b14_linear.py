# EVA-02 ViT-B/14 (MIM on ImageNet-21k) as a frozen feature extractor + linear
# head: SwiGLU MLPs with their sub-LN, 2-D rotary position embeddings (rescaled
# to the 16 x 16 pretraining grid), the patch tokens averaged and normalised
# (fc_norm); CLIP normalisation (RGB). The root of every EVA-02-B/14 variant.
_base_ = ['./vit-b16_linear.py']
model = dict(
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        mean=[122.770938, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        to_rgb=True),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=768, num_layers=12, num_heads=12,
                  feedforward_channels=2048),
        patch_size=14,
        mlp='swiglu',
        mlp_norm=True,
        rope=True,
        rope_ref_grid=(16, 16),
        out_type='avg_featmap',
        final_norm=False,
        pool_norm=True,
        pretrained='hf-hub:timm/eva02_base_patch14_224.mim_in22k'))
