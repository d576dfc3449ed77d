# DyT (MLP dispatch, adapter d=64, target rate r=0.5) on OpenAI's CLIP
# ViT-B/16 image tower applied frame by frame, with the cross-attention query
# head of dyt_vit-b16.py: pre-norm (ln_pre), LayerNorm eps 1e-5, QuickGELU,
# CLIP normalisation (RGB). The 512-d projection is left off (proj_dims
# unset): the head reads the 768-wide tokens. OpenCLIP (LAION-2B): act='gelu'
# and pretrained='hf-hub:timm/vit_base_patch16_clip_224.laion2b'.
_base_ = ['./dyt_vit-b16.py']
model = dict(
    backbone=dict(
        pre_norm=True,
        norm_eps=1e-5,
        act='quick_gelu',
        pretrained='hf-hub:timm/vit_base_patch16_clip_224.openai'),
    data_preprocessor=dict(
        mean=[122.770938, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305]))
