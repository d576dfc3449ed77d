"""Recognizer that adds DyT's activation-rate loss and reports the FLOPs
each video actually cost."""
from mmaction.models.recognizers import Recognizer3D
from mmaction.registry import MODELS

from ..task_utils import attach_efficiency, build_rate_loss, find_dyt_backbone, rate_losses
from .frame_vit import FrameDyTVisionTransformer


@MODELS.register_module()
class DyTRecognizer3D(Recognizer3D):
    """:class:`Recognizer3D` for a per-frame DyT backbone.

    Training adds ``loss_rate`` (activation-rate loss over every frame's
    masks) to the loss dict. Prediction stores in each video's data sample
    ``dyt_flops``: multiply-adds per test view (sum over the view's frames
    plus the head, averaged over the video's views) and ``dyt_rates``: the
    video's activation rate per dispatcher (mean over views and frames), read
    by :class:`mmdyt.evaluation.EfficiencyMetric`.

    Args:
        rate_loss (dict | None): e.g. ``dict(type='ActivationRateLoss',
            target_rate=0.5, loss_weight=2.0)``; None for the baselines.
        **kwargs: :class:`Recognizer3D` arguments (``backbone``,
            ``cls_head``, ``data_preprocessor``, ``train_cfg``, ``test_cfg``).
    """

    def __init__(self, rate_loss=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(self.backbone, FrameDyTVisionTransformer):
            raise ValueError('DyTRecognizer3D needs a FrameDyTVisionTransformer backbone, '
                             f'got {type(self.backbone).__name__}')
        if (self.test_cfg or {}).get('max_testing_views'):
            raise ValueError('test_cfg.max_testing_views is not supported by DyTRecognizer3D: '
                             'the FLOPs of a video need all its views in one forward')
        self.rate_loss = build_rate_loss(rate_loss)

    def loss(self, inputs, data_samples, **kwargs):
        losses = super().loss(inputs, data_samples, **kwargs)
        losses.update(rate_losses(find_dyt_backbone(self), self.rate_loss))
        return losses

    def predict(self, inputs, data_samples, **kwargs):
        """Inputs (N, views, C, T, H, W) -> data samples with ``pred_score``,
        ``dyt_flops`` and ``dyt_rates``."""
        predictions = super().predict(inputs, data_samples, **kwargs)
        num_videos, num_views = inputs.shape[:2]
        flops = self.backbone.flops() + self.cls_head.flops()
        flops = flops.view(num_videos, num_views).mean(1)
        rates = self.backbone.clip_rates()
        if rates is not None:
            rates = rates.view(num_videos, num_views, -1).mean(1)
        return attach_efficiency(predictions, flops, rates)
