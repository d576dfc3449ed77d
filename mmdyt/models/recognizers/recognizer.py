"""Recognizer that adds DyT's activation-rate loss and reports the FLOPs
each video actually cost."""
from mmaction.models.recognizers import Recognizer3D
from mmaction.registry import MODELS

from ..backbones import FrameDyTVisionTransformer
from ..task_mixin import DyTTaskMixin, attach_efficiency


@MODELS.register_module()
class DyTRecognizer3D(DyTTaskMixin, Recognizer3D):
    """:class:`Recognizer3D` for a per-frame DyT backbone.

    Training adds ``loss_rate`` (activation-rate loss over every frame's
    masks) to the loss dict and, with ``distill``, the reference DyT code's
    self-distillation (``loss_teacher``, ``loss_distill``: a dense teacher
    forward, :meth:`DyTTaskMixin.distill_losses`). Prediction stores in each video's data sample
    ``dyt_flops``: multiply-adds per test view (sum over the view's frames
    plus the head, averaged over the video's views) and ``dyt_rates``: the
    video's activation rate per dispatcher (mean over views and frames), read
    by :class:`mmdyt.evaluation.EfficiencyMetric`. Checkpoints keep only the
    trainable weights plus the backbone's ``pretrained`` name.

    Args:
        rate_loss (dict | None): e.g. ``dict(type='ActivationRateLoss',
            target_rate=0.5, loss_weight=2.0)``; None for the baselines.
        distill (dict | None): ``dict(loss_weight=1.0, teacher_weight=1.0)``
            for self-distillation; None = off (the paper's loss).
        **kwargs: :class:`Recognizer3D` arguments (``backbone``,
            ``cls_head``, ``data_preprocessor``, ``train_cfg``, ``test_cfg``).
    """

    def __init__(self, rate_loss=None, distill=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(self.backbone, FrameDyTVisionTransformer):
            raise TypeError('DyTRecognizer3D needs a FrameDyTVisionTransformer backbone, '
                            f'got {type(self.backbone).__name__}')
        if (self.test_cfg or {}).get('max_testing_views'):
            raise ValueError('test_cfg.max_testing_views is not supported by DyTRecognizer3D: '
                             'the FLOPs of a video need all its views in one forward')
        self.init_dyt(rate_loss, distill)

    def loss(self, inputs, data_samples, **kwargs):
        """``loss_cls``, ``loss_rate`` and, with ``distill``, ``loss_teacher``
        and ``loss_distill`` (the student's class scores taken from its own
        forward of the head)."""
        student_scores = []
        handle = self.cls_head.register_forward_hook(
            lambda module, args, out: student_scores.append(out))
        try:
            losses, records = self.recorded(super().loss, inputs, data_samples, **kwargs)
        finally:
            handle.remove()
        losses.update(self.dyt_losses(records[0]))
        if self.distill is not None:
            def teacher():
                feats, head_kwargs = self.extract_feat(inputs, data_samples=data_samples)
                scores = self.cls_head(feats, **head_kwargs)
                return self.cls_head.loss_by_feat(scores, data_samples)['loss_cls'], scores
            losses.update(self.distill_losses(student_scores[0], teacher))
        return losses

    def predict(self, inputs, data_samples, **kwargs):
        """Inputs (N, views, C, T, H, W) -> data samples with ``pred_score``,
        ``dyt_flops``, ``dyt_rates`` and, in capacity mode, ``dyt_overflow``
        (active tokens left out per clip, summed over its frames, mean over
        the views)."""
        predictions, records = self.recorded(super().predict, inputs, data_samples, **kwargs)
        record = records[0]
        num_videos, num_views = inputs.shape[:2]
        tokens_per_clip = record.clip_shape[1] * (1 + record.num_patches)
        flops = self.backbone.flops(record) + self.cls_head.flops(tokens_per_clip)
        flops = flops.view(num_videos, num_views).mean(1)
        rates = self.backbone.clip_rates(record)
        if rates is not None:
            rates = rates.view(num_videos, num_views, -1).mean(1)
        overflow = None
        if record.capacity_mode:
            overflow = record.per_clip(record.overflow_counts()).sum(1)
            overflow = overflow.view(num_videos, num_views).mean(1)
        return attach_efficiency(predictions, flops, rates, overflow)
