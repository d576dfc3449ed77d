"""UperNet-style segmentor for the DyT backbone (mmseg ``EncoderDecoder``).

Training adds the activation-rate loss of the backbone's forward to the loss
dict. Prediction runs the backbone with real skipping (the backbone's
``skip_inactive``) in both whole-image and sliding-window mode, and stores in
each predicted sample the backbone FLOPs actually computed for that image and
its per-layer activation rates (read by ``EfficiencyMetric``), from the
records of the backbone forwards (one per window).
"""
import torch
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

from ..task_mixin import DyTTaskMixin, attach_efficiency


@MODELS.register_module()
class DyTEncoderDecoder(DyTTaskMixin, EncoderDecoder):
    """mmseg ``EncoderDecoder`` with DyT's rate loss and efficiency figures.

    Args:
        rate_loss (dict | None): e.g. ``dict(type='ActivationRateLoss',
            target_rate=0.5, loss_weight=2.0)``; None for the baselines
            without dispatchers.
        **kwargs: the arguments of mmseg's ``EncoderDecoder``.

    In slide mode an image is cut into windows that each go through the
    backbone; its FLOPs are the sum over its windows and its activation rates
    the patch-token weighted mean over its windows. Checkpoints keep only the
    trainable weights plus the backbone's ``pretrained`` name.
    """

    def __init__(self, *args, rate_loss=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.init_dyt(rate_loss)

    def loss(self, inputs, data_samples):
        """Decode / auxiliary losses plus ``loss_rate`` (when configured)."""
        losses, records = self.recorded(super().loss, inputs, data_samples)
        losses.update(self.dyt_losses(records[0]))
        return losses

    def predict(self, inputs, data_samples=None):
        """Predictions with ``dyt_flops`` (backbone multiply-adds of each
        image, summed over its windows), ``dyt_rates`` and, in capacity mode,
        ``dyt_overflow`` (active tokens left out, summed over the windows) in
        their metainfo."""
        results, records = self.recorded(super().predict, inputs, data_samples)
        flops, rates = self.image_efficiency(records)
        overflow = (torch.stack([r.overflow_counts() for r in records]).sum(0)
                    if any(r.capacity_mode for r in records) else None)
        return attach_efficiency(results, flops, rates, overflow)

    def image_efficiency(self, records):
        """(B,) FLOPs summed over the windows' records and (B,
        num_dispatchers) rates averaged over them, weighted by patch tokens
        (or None without dispatchers)."""
        backbone = self.dyt_backbone
        flops = torch.stack([backbone.flops(r) for r in records]).sum(0)
        if not records[0].dispatcher_names:
            return flops, None
        weights = torch.tensor([float(r.num_patches) for r in records])
        rates = torch.stack([r.per_sample_rates() for r in records])  # (windows, B, layers)
        return flops, (rates * weights[:, None, None]).sum(0) / weights.sum()
