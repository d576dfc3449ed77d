"""Image classifier of mmpretrain with Dynamic Tuning's losses and figures."""
import torch.nn as nn
from mmpretrain.models import ImageClassifier
from mmpretrain.registry import MODELS

from ..backbones.checkpoint import load_vit_checkpoint
from ..losses import distillation_kl
from ..peft_state import install_peft_state
from ..task_utils import (all_tokens_active, attach_efficiency, build_rate_loss,
                          find_dyt_backbone, per_sample_rates, rate_losses)


def linear_flops(module):
    """Multiply-adds of every ``nn.Linear`` in ``module`` for one input vector
    (the per-sample cost of a classification head)."""
    return sum(m.in_features * m.out_features for m in module.modules()
               if isinstance(m, nn.Linear))


@MODELS.register_module()
class DyTImageClassifier(ImageClassifier):
    """:class:`ImageClassifier` with a :class:`DyTVisionTransformer` backbone.

    Adds to the loss dict the activation-rate loss ``loss_rate`` (DyT Eq. 8)
    and, with ``distill``, the self-distillation terms ``loss_teacher``
    (cross-entropy of a second forward with every token active) and
    ``loss_distill`` (KL(teacher || student), teacher detached); the total is
    ``CE(student) + rate + CE(teacher) + KL``. Predictions carry the FLOPs
    actually computed (backbone + head) and per-layer activation rates for
    :class:`EfficiencyMetric`. Checkpoints keep only the trainable weights
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
        dispatching = self.dyt_backbone is not None and bool(self.dyt_backbone.dispatchers())
        if (rate_loss is not None or distill is not None) and not dispatching:
            raise ValueError('rate_loss and distill need a DyTVisionTransformer backbone with '
                             'token dispatchers (dispatch is None): set them to None')
        if distill is not None and set(distill) - {'loss_weight', 'teacher_weight'}:
            raise ValueError(f'distill takes loss_weight and teacher_weight, got {distill}')
        self.rate_loss = build_rate_loss(rate_loss)
        self.distill = distill
        if self.dyt_backbone is not None:
            backbone_module = self.dyt_backbone
            install_peft_state(self, lambda: backbone_module.pretrained,
                               lambda path: load_vit_checkpoint(backbone_module, path))

    @property
    def dyt_backbone(self):
        """The DyTVisionTransformer inside ``backbone`` (None for another
        backbone)."""
        return find_dyt_backbone(self.backbone)

    def loss(self, inputs, data_samples):
        """Losses of a batch: ``loss`` (CE), ``loss_rate``, and with
        ``distill`` ``loss_teacher`` and ``loss_distill``.

        The dense teacher runs first, so that the masks the backbone keeps
        (read by the rate loss and :class:`ActivationLoggerHook`) are the
        student's.
        """
        losses = {}
        if self.distill is not None:
            with all_tokens_active(self.dyt_backbone):
                teacher_feats = self.extract_feat(inputs)
            teacher_logits = self.head(teacher_feats).detach()
            teacher_loss = self.head.loss(teacher_feats, data_samples)['loss']
            losses['loss_teacher'] = self.distill.get('teacher_weight', 1.0) * teacher_loss
        feats = self.extract_feat(inputs)
        losses.update(self.head.loss(feats, data_samples))
        losses.update(rate_losses(self.dyt_backbone, self.rate_loss))
        if self.distill is not None:
            kl = distillation_kl(self.head(feats), teacher_logits)
            losses['loss_distill'] = self.distill.get('loss_weight', 1.0) * kl
        return losses

    def predict(self, inputs, data_samples=None, **kwargs):
        """Predictions with ``dyt_flops`` (backbone + head multiply-adds per
        sample) and ``dyt_rates`` (per-layer activation rates) in their
        metainfo."""
        feats = self.extract_feat(inputs)
        predictions = self.head.predict(feats, data_samples, **kwargs)
        if self.dyt_backbone is not None:
            flops = self.dyt_backbone.flops() + linear_flops(self.head)
            attach_efficiency(predictions, flops, per_sample_rates(self.dyt_backbone))
        return predictions
