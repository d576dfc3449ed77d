"""What the task glue of every toolbox shares: finding the DyT backbone, its
losses, and the efficiency figures each prediction carries to the metric."""
import contextlib

import torch
from mmengine.registry import MODELS

from .backbones import DyTVisionTransformer


def find_dyt_backbone(model):
    """The first :class:`DyTVisionTransformer` inside ``model`` (a backbone,
    a wrapper around one, or a whole classifier / segmentor / recognizer), or
    None."""
    for module in model.modules():
        if isinstance(module, DyTVisionTransformer):
            return module
    return None


def build_rate_loss(rate_loss):
    """A config dict (e.g. ``dict(type='ActivationRateLoss', target_rate=0.5)``)
    -> module; None -> None (no rate loss, e.g. for the baselines)."""
    return MODELS.build(rate_loss) if rate_loss is not None else None


def rate_losses(backbone, rate_loss):
    """``{'loss_rate': ...}`` of the backbone's last forward, or ``{}``."""
    if rate_loss is None:
        return {}
    if backbone is None:
        raise ValueError('rate_loss is set but the model has no DyTVisionTransformer backbone')
    return {'loss_rate': rate_loss(backbone.masks(), backbone.num_fixed_tokens)}


def per_sample_rates(backbone):
    """(B, num_dispatchers) activation rate of each sample in the last forward."""
    masks = backbone.masks()
    if not masks:
        return None
    fixed = backbone.num_fixed_tokens
    return torch.stack([m[:, fixed:].float().mean(1) for m in masks], 1).cpu()


def attach_efficiency(data_samples, flops, rates=None):
    """Store per-sample backbone FLOPs (``dyt_flops``, float) and per-layer
    activation rates (``dyt_rates``, (num_dispatchers,) tensor) in each data
    sample's metainfo, where :class:`EfficiencyMetric` reads them.

    Args:
        data_samples (list): one data sample per prediction.
        flops (Tensor): (len(data_samples),) multiply-adds per sample.
        rates (Tensor | None): (len(data_samples), num_dispatchers).
    """
    for i, sample in enumerate(data_samples):
        meta = dict(dyt_flops=float(flops[i]))
        if rates is not None:
            meta['dyt_rates'] = rates[i]
        sample.set_metainfo(meta)
    return data_samples


@contextlib.contextmanager
def all_tokens_active(backbone):
    """Within the block, every dispatcher of ``backbone`` activates every
    token (mask of ones): the dense teacher of self-distillation."""
    dispatchers = backbone.dispatchers()
    for dispatcher in dispatchers:
        dispatcher.forward = lambda x: x.new_ones(x.shape[:2])
    try:
        yield backbone
    finally:
        for dispatcher in dispatchers:
            del dispatcher.forward
