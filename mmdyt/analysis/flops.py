"""FLOPs actually computed by a model that contains a DyT backbone.

The backbone is counted by :meth:`DyTVisionTransformer.flops` from the record
of a real forward (eval mode, skipping path), so only the tokens that ran are counted
and the attention matmuls are included. mmengine's ``FlopAnalyzer`` would
record ``scaled_dot_product_attention`` as zero and cannot see which tokens
were skipped, so it only counts the rest of the model (necks, heads) while
the backbone is replaced by a module that replays its recorded outputs.
Convention: fvcore's, one multiply-add is one FLOP.
"""
from contextlib import contextmanager

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer

from ..models.early_exit import EarlyExitMixin
from ..models.record import record_forwards
from ..models.task_model import TensorForward, find_dyt_backbone, tensor_forward


def count_parameters(model):
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


class _Replay(nn.Module):
    """Stands in for the backbone and returns its recorded outputs."""

    def __init__(self, outputs):
        super().__init__()
        self.outputs = outputs

    def forward(self, *args, **kwargs):
        return self.outputs


@contextmanager
def _replaced(model, target, replacement):
    """Temporarily put ``replacement`` where ``target`` sits inside ``model``."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if child is target:
                parent._modules[name] = replacement
                try:
                    yield
                finally:
                    parent._modules[name] = target
                return
    raise ValueError('the backbone is not a submodule of the model')


def _early_exit_flops(model, backbone, inputs, num_samples):
    """:func:`measure_flops` of an early-exit model: dynamic inference at its
    thresholds, each unit counting the blocks and heads it ran."""
    _, exit_index, flops, record = model.dynamic_inference(inputs)
    breakdown = {f'backbone.{k}': v.sum().item() / num_samples
                 for k, v in backbone.flops_by_part(record).items()}
    total = flops.sum().item() / num_samples
    backbone_total = backbone.flops(record).sum().item() / num_samples
    breakdown['heads'] = total - backbone_total
    histogram = torch.bincount(exit_index, minlength=model.num_exits).tolist()
    return dict(total=total, backbone=backbone_total, rest=total - backbone_total,
                breakdown=breakdown, rates=record.activation_rates(), record=record,
                exit_histogram=histogram)


@torch.no_grad()
def measure_flops(model, inputs, num_samples=None):
    """Run ``model`` on ``inputs`` (eval mode, skipping path) and count what ran.

    Args:
        model (nn.Module): a classifier / segmentor / recognizer, or a bare
            backbone, containing a :class:`DyTVisionTransformer`.
        inputs (Tensor): preprocessed batch, e.g. (B, 3, H, W) or the
            recognizer's (B, clips, C, T, H, W).
        num_samples (int | None): samples in ``inputs`` (images or videos) the
            totals are divided by; default ``inputs.shape[0]``.

    Returns:
        dict: ``total`` (float, multiply-adds per sample), ``backbone``
        (float), ``rest`` (float, everything outside the backbone),
        ``breakdown`` (dict name -> float per sample, backbone parts then
        the other top-level modules), ``rates`` ((num_dispatchers,)
        activation rates of this batch) and ``record`` (the backbone's
        :class:`ForwardRecord`). An early-exit model runs its dynamic
        inference at its ``thresholds`` (its heads are ``rest``) and adds the
        ``exit_histogram``.
    """
    backbone = find_dyt_backbone(model)
    if backbone is None:
        raise ValueError('the model has no DyTVisionTransformer backbone')
    num_samples = num_samples or inputs.shape[0]
    model.eval()
    if isinstance(model, EarlyExitMixin):
        return _early_exit_flops(model, backbone, inputs, num_samples)
    outputs = []
    handle = backbone.register_forward_hook(lambda m, args, out: outputs.append(out))
    try:
        with record_forwards(backbone) as records:
            tensor_forward(model, inputs)
    finally:
        handle.remove()
    record = records[0]
    breakdown = {f'backbone.{k}': v.sum().item() / num_samples
                 for k, v in backbone.flops_by_part(record).items()}
    backbone_total = backbone.flops(record).sum().item() / num_samples
    rest, rest_modules = 0.0, {}
    if backbone is not model:
        with _replaced(model, backbone, _Replay(outputs[0])):
            analyzer = FlopAnalyzer(TensorForward(model), (inputs, ))
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            rest = analyzer.total() / num_samples
            by_module = analyzer.by_module()
            for name, child in model.named_children():
                if by_module.get(f'model.{name}', 0):
                    rest_modules[name] = by_module[f'model.{name}'] / num_samples
    breakdown.update(rest_modules)
    return dict(total=backbone_total + rest, backbone=backbone_total, rest=rest,
                breakdown=breakdown, rates=record.activation_rates(), record=record)
