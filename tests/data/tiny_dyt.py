"""The tiny DyT ViT of the tests, and image batches.

* :data:`ARCH`, :func:`tiny_arch`: the arch dict (C=48, 3 heads, MLP 96),
  e.g. ``tiny_arch(num_layers=3)`` for ``DyTVisionTransformer(arch=...)``,
  an mmpretrain ``VisionTransformer`` or a config; :func:`tiny_arch_text`:
  the same as config text replacing a base config's arch.
* :func:`tiny_vit_cfg`: the backbone config dict of a tiny ViT on 32x32
  images with 8x8 patches, for a classifier, recognizer or segmentor config.
* :func:`tiny_vit`: that backbone built, as constructed (adapters' up
  projections zero, gates as initialised).
* :func:`tiny_classifier`: an mmpretrain ``DyTImageClassifier`` on it.
* :func:`tiny_dyt`: a tiny ViT in eval mode with random gates and adapters
  (mixed token patterns), for the deploy paths (ONNX, torch.compile,
  capacity mode).
* :func:`skipping_and_masked`: a DyT backbone's outputs with the token
  skipping and on the masked path, to compare.
"""
import torch

from mmdyt.models.backbones import DyTVisionTransformer
from mmdyt.models.record import ForwardRecord

#: The width of the tiny ViT (one block unless ``num_layers`` is given).
ARCH = dict(embed_dims=48, num_layers=1, num_heads=3, feedforward_channels=96)
#: 32x32 images, 8x8 patches: 16 patch tokens + the class token.
SHAPE = (3, 32, 32)
IMG_SIZE, PATCH_SIZE = 32, 8
NUM_TOKENS = 1 + (IMG_SIZE // PATCH_SIZE)**2


def tiny_arch(num_layers=1, **overrides):
    """:data:`ARCH` with ``num_layers`` blocks and ``overrides`` (e.g.
    ``embed_dims=96, num_heads=6``)."""
    return dict(ARCH, num_layers=num_layers, **overrides)


def tiny_arch_text(num_layers=1, **overrides):
    """:func:`tiny_arch` as config text that replaces a base config's arch
    (``_delete_``): ``dict(_delete_=True, embed_dims=48, num_layers=1,
    num_heads=3, feedforward_channels=96)``."""
    items = dict(_delete_=True, **tiny_arch(num_layers, **overrides)).items()
    return 'dict(' + ', '.join(f'{key}={value!r}' for key, value in items) + ')'


def tiny_vit_cfg(num_layers=1, **kwargs):
    """``dict(type='DyTVisionTransformer', arch=tiny_arch(num_layers),
    img_size=32, patch_size=8)`` updated with ``kwargs`` (any constructor
    argument, ``type`` and ``arch`` too)."""
    cfg = dict(type='DyTVisionTransformer', arch=tiny_arch(num_layers), img_size=IMG_SIZE,
               patch_size=PATCH_SIZE)
    cfg.update(kwargs)
    return cfg


def tiny_vit(num_layers=1, **kwargs):
    """``DyTVisionTransformer(**tiny_vit_cfg(num_layers, **kwargs))`` (the
    constructor's defaults otherwise: ``dispatch='mlp'``, ``adapter_dim=64``,
    training mode)."""
    cfg = tiny_vit_cfg(num_layers, **kwargs)
    assert cfg.pop('type') == 'DyTVisionTransformer', 'tiny_vit builds DyTVisionTransformer only'
    return DyTVisionTransformer(**cfg)


def tiny_classifier(backbone=None, num_layers=3, num_classes=5, width=ARCH['embed_dims'],
                    **kwargs):
    """An mmpretrain ``DyTImageClassifier`` of ``num_classes`` (a linear
    head on ``width`` channels) on :func:`tiny_vit_cfg` with ``num_layers``
    blocks and adapters of 8, updated with ``backbone`` (constructor
    arguments); ``kwargs``: the classifier's (``rate_loss``, ``distill``
    ...)."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    cfg = dict(type='DyTImageClassifier',
               backbone=tiny_vit_cfg(num_layers, **dict(dict(adapter_dim=8), **(backbone or {}))),
               head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=width),
               **kwargs)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


def tiny_dyt(dispatch='mlp', num_experts=1, num_layers=1, **kwargs):
    """A DyT ViT (C=48, 3 heads, MLP 96) in eval mode whose gates (std 0.5)
    and adapter up projections (std 0.1) are random, so that patterns are
    mixed and adapters count."""
    torch.manual_seed(0)
    model = tiny_vit(num_layers, adapter_dim=8, dispatch=dispatch, num_experts=num_experts,
                     **kwargs).eval()
    with torch.no_grad():
        for dispatcher in model.dispatchers():
            dispatcher.gate.weight.normal_(std=0.5)
        for name, param in model.named_parameters():
            if 'adapters' in name and 'up' in name:
                param.normal_(std=0.1)
    return model


def images(batch_size=2, seed=123):
    """(batch_size, 3, 32, 32) random images."""
    return torch.randn(batch_size, *SHAPE, generator=torch.Generator().manual_seed(seed))


def skipping_and_masked(model, x):
    """``(skipped, masked, record)``: ``model(x)[0]`` without gradients with
    the token skipping and on the masked path (``skip_inactive=False``), and
    the :class:`ForwardRecord` of the skipping run; ``model.skip_inactive``
    is restored."""
    skip_inactive = model.skip_inactive
    with torch.no_grad():
        record = ForwardRecord()
        skipped = model(x, record=record)[0]
        model.skip_inactive = False
        masked = model(x)[0]
    model.skip_inactive = skip_inactive
    return skipped, masked, record
