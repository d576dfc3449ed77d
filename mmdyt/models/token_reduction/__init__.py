"""Token reduction on the one ViT: ToMe (merging), EViT (keeping + fusing)
and DynamicViT (learned pruning), selected by
``DyTVisionTransformer(token_reduction=dict(type=..., ...))``; each works
through a :class:`BlockHook` the ViT block calls around its parts, so the
blocks, adapters, dispatchers and the FLOPs home stay the ViT's own."""
from .base import BlockHook, TokenReduction, default_layers, reduction_disabled, token_counts
from .dynamicvit import DynamicViT, KeepPredictor
from .evit import EViT, class_attention, keep_and_fuse
from .tome import ToMe, bipartite_soft_matching, merge_tokens

TOKEN_REDUCTIONS = {'tome': ToMe, 'evit': EViT, 'dynamicvit': DynamicViT}


def build_token_reduction(cfg, backbone):
    """``dict(type='tome' | 'evit' | 'dynamicvit', **kwargs)`` -> the module
    for ``backbone`` (a :class:`DyTVisionTransformer` whose blocks exist);
    None -> None.

    Raises:
        ValueError: unknown type or argument, or a backbone setting the
            reduction does not support, naming it.
    """
    if cfg is None:
        return None
    cfg = dict(cfg)
    kind = cfg.pop('type', None)
    if kind not in TOKEN_REDUCTIONS:
        raise ValueError(f'token_reduction type must be one of {sorted(TOKEN_REDUCTIONS)}, '
                         f'got {kind!r}')
    TokenReduction.check_backbone(backbone, kind)
    if kind == 'dynamicvit':
        cfg['embed_dims'] = backbone.embed_dims
    try:
        return TOKEN_REDUCTIONS[kind](backbone.num_layers, **cfg)
    except TypeError as error:
        raise ValueError(f'token_reduction {kind!r}: {error}') from None


__all__ = [
    'TOKEN_REDUCTIONS', 'build_token_reduction', 'BlockHook', 'TokenReduction',
    'default_layers', 'reduction_disabled', 'token_counts', 'ToMe',
    'bipartite_soft_matching', 'merge_tokens', 'EViT', 'class_attention', 'keep_and_fuse',
    'DynamicViT', 'KeepPredictor'
]
