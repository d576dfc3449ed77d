"""Image classifier of mmpretrain with Dynamic Tuning's losses and figures."""
import torch
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS

from ..flops import linear_layers_flops
from ..task_mixin import DyTTaskMixin, attach_efficiency
from ..token_reduction import reduction_disabled


@MODELS.register_module()
class DyTImageClassifier(DyTTaskMixin, ImageClassifier):
    """:class:`ImageClassifier` with a :class:`DyTVisionTransformer` backbone.

    Adds to the loss dict the activation-rate loss ``loss_rate`` (DyT Eq. 8)
    and, with ``distill``, the self-distillation terms ``loss_teacher``
    (cross-entropy of a second forward with every token active) and
    ``loss_distill`` (KL(teacher || student), teacher detached); the total is
    ``CE(student) + rate + CE(teacher) + KL``. A backbone with a token
    reduction adds its losses (:meth:`token_reduction_losses`). Predictions
    carry the FLOPs actually computed (backbone + head) and per-layer
    activation rates for :class:`EfficiencyMetric`. Checkpoints keep only the trainable weights
    plus the backbone's ``pretrained`` name (:mod:`mmdyt.models.peft_state`).

    Args:
        backbone (dict): a ``DyTVisionTransformer`` config (any baseline
            setting: ``dispatch=None`` for AdaptFormer, LoRA, VPT, linear
            probe and full tuning).
        rate_loss (dict | None): e.g. ``dict(type='ActivationRateLoss',
            target_rate=0.5, loss_weight=2.0)``; None when the backbone has no
            dispatcher.
        distill (dict | None): ``dict(loss_weight=1.0)`` to weight the KL term
            (``teacher_weight`` the teacher CE, default 1.0); None = off.
        **kwargs: see :class:`mmpretrain.models.ImageClassifier`.
    """

    def __init__(self, backbone, rate_loss=None, distill=None, **kwargs):
        super().__init__(backbone=backbone, **kwargs)
        self.init_dyt(rate_loss, distill)

    def features(self, inputs):
        """``extract_feat(inputs)`` and the record of its backbone forward."""
        feats, records = self.recorded(self.extract_feat, inputs)
        return feats, records[0]

    def loss(self, inputs, data_samples):
        """Losses of a batch: ``loss`` (CE), ``loss_rate``, and with
        ``distill`` ``loss_teacher`` and ``loss_distill``. Each forward has
        its own record, so the order of student and teacher is free."""
        feats, record = self.features(inputs)
        losses = self.head.loss(feats, data_samples)
        losses.update(self.dyt_losses(record))
        if getattr(self.dyt_backbone, 'token_reduction', None) is not None:
            losses.update(self.token_reduction_losses(inputs, feats, record))
        if self.distill is not None:
            def teacher():
                teacher_feats = self.extract_feat(inputs)
                return (self.head.loss(teacher_feats, data_samples)['loss'],
                        self.head(teacher_feats))
            losses.update(self.distill_losses(self.head(feats), teacher))
        return losses

    def token_reduction_losses(self, inputs, feats, record):
        """The backbone's token reduction losses (DynamicViT: ``loss_ratio``
        and, with ``distill_weight``, ``loss_distill`` / ``loss_token_distill``
        against a teacher pass of the same network without reduction, run
        without gradients)."""
        reduction = self.dyt_backbone.token_reduction
        losses = reduction.losses(record)
        if reduction.distill_weight:
            with torch.no_grad(), reduction_disabled(reduction):
                teacher_feats, teacher_records = self.recorded(self.extract_feat, inputs)
            losses.update(reduction.distill_losses(record, teacher_records[0], self.head(feats),
                                                   self.head(teacher_feats),
                                                   self.dyt_backbone.norm))
        return losses

    def predict(self, inputs, data_samples=None, **kwargs):
        """Predictions with ``dyt_flops`` (backbone + head multiply-adds per
        sample) and ``dyt_rates`` (per-layer activation rates) in their
        metainfo."""
        feats, record = self.features(inputs)
        predictions = self.head.predict(feats, data_samples, **kwargs)
        flops = self.dyt_backbone.flops(record) + linear_layers_flops(self.head)
        overflow = record.overflow_counts() if record.capacity_mode else None
        return attach_efficiency(predictions, flops, record.per_sample_rates(), overflow)
