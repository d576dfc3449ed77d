"""UperNet-style segmentor for the DyT backbone (mmseg ``EncoderDecoder``).

Training adds the activation-rate loss of the backbone's last forward to the
loss dict. Prediction runs the backbone with real skipping (the backbone's
``skip_inactive``) in both whole-image and sliding-window mode, and stores in
each predicted sample the backbone FLOPs actually computed for that image and
its per-layer activation rates (read by ``EfficiencyMetric``).
"""
import torch
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

from ..task_utils import (attach_efficiency, build_rate_loss, find_dyt_backbone,
                          per_sample_rates, rate_losses)


@MODELS.register_module()
class DyTEncoderDecoder(EncoderDecoder):
    """mmseg ``EncoderDecoder`` with DyT's rate loss and efficiency figures.

    Args:
        rate_loss (dict | None): e.g. ``dict(type='ActivationRateLoss',
            target_rate=0.5, loss_weight=2.0)``; None for the baselines
            without dispatchers.
        **kwargs: the arguments of mmseg's ``EncoderDecoder``.

    In slide mode an image is cut into windows that each go through the
    backbone; its FLOPs are the sum over its windows and its activation rates
    the patch-token weighted mean over its windows.
    """

    def __init__(self, *args, rate_loss=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.rate_loss = build_rate_loss(rate_loss)
        self._windows = []

    @property
    def dyt_backbone(self):
        """The :class:`DyTVisionTransformer` inside ``self.backbone``."""
        backbone = find_dyt_backbone(self.backbone)
        if backbone is None:
            raise TypeError(f'{type(self).__name__} needs a DyTVisionTransformer backbone, '
                            f'got {type(self.backbone).__name__}')
        return backbone

    def loss(self, inputs, data_samples):
        """Decode / auxiliary losses plus ``loss_rate`` (when configured)."""
        losses = super().loss(inputs, data_samples)
        losses.update(rate_losses(self.dyt_backbone, self.rate_loss))
        return losses

    def encode_decode(self, inputs, batch_img_metas):
        """(B, 3, h, w) window or image -> (B, K, h, w) logits; records the
        backbone's per-sample FLOPs and rates of this forward."""
        seg_logits = super().encode_decode(inputs, batch_img_metas)
        backbone = self.dyt_backbone
        masks = backbone.masks()
        num_patches = masks[0].shape[1] - backbone.num_fixed_tokens if masks else 0
        self._windows.append((backbone.flops(), per_sample_rates(backbone), num_patches))
        return seg_logits

    def predict(self, inputs, data_samples=None):
        """Predictions with ``dyt_flops`` (backbone multiply-adds of each
        image, summed over its windows) and ``dyt_rates`` in their metainfo."""
        self._windows = []
        results = super().predict(inputs, data_samples)
        flops, rates = self._image_efficiency()
        return attach_efficiency(results, flops, rates)

    def _image_efficiency(self):
        """(B,) FLOPs summed over the recorded windows and (B, num_dispatchers)
        rates averaged over them, weighted by patch tokens (or None)."""
        windows, self._windows = self._windows, []
        flops = torch.stack([w[0] for w in windows]).sum(0)
        if windows[0][1] is None:
            return flops, None
        weights = torch.tensor([float(w[2]) for w in windows])
        rates = torch.stack([w[1] for w in windows])  # (windows, B, layers)
        return flops, (rates * weights[:, None, None]).sum(0) / weights.sum()
