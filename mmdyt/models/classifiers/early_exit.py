"""Dyn-Adapter for mmpretrain: early-exit image classification on the shared
backbone, with dynamic inference (paper Sec. 3.2-3.4); the exits are
:class:`mmdyt.models.early_exit.EarlyExitMixin`'s.
:class:`mmdyt.evaluation.EarlyExitMetric` reports accuracy, mean GFLOPs and
the exit histogram.
"""
import torch
from mmpretrain.models.classifiers import BaseClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..early_exit import EarlyExitMixin
from ..heads.early_exit import ExitHead
from ..task_mixin import attach_efficiency


@MODELS.register_module()
class EarlyExitClassifier(EarlyExitMixin, BaseClassifier):
    """Early-exit classifier (Dyn-Adapter) on a :class:`DyTVisionTransformer`.

    Args:
        backbone (dict): backbone config; its PETL modules (``adapter_dim``,
            ``lora_rank``, ``petl``, DyT ``dispatch``) are what is tuned.
        num_classes (int): K.
        exit_interval (int): T, exits after blocks T, 2T, ..., L.
        exit_layers (Sequence[int] | None): 1-based blocks with an exit
            (overrides ``exit_interval``); the last must be the last block.
        heads (Sequence[dict] | None): :class:`ExitHead` kwargs per exit
            (``in_channels`` / ``num_classes`` filled in); default
            :func:`balanced_head_specs` (MLP on the shallow half, linear on
            the deep half).
        num_shallow_stages (int | None): stages (blocks up to an exit)
            counted as shallow for stage dropout and loss priority; default
            half of them.
        stage_dropout (dict | None): ``dict(shallow=0.5, deep=0.1)``: rate of
            every dropout of the PETL modules in shallow / deep stages
            (forward sparsification); None keeps the modules' own rates.
        loss_weights (Sequence[float] | None): lambda per exit (default all
            1.0; :class:`LossPriorityHook` schedules them).
        thresholds (Sequence[float] | None): confidence threshold per exit at
            inference (default all 1.0: every sample takes the last head).
        loss (dict): classification loss per exit.
        rate_loss (dict | None): activation-rate loss when the backbone
            dispatches tokens (DyT), e.g.
            ``dict(type='ActivationRateLoss', target_rate=0.5)``.
        feature (str): what every exit head reads: 'cls_token' or
            'avg_featmap' (the mean of the patch tokens: global pooling, as
            the MAE recipe uses).
        data_preprocessor (dict | None): default ``ClsDataPreprocessor``.

    Checkpoints keep only the trainable weights plus the backbone's
    ``pretrained`` name, as for :class:`DyTImageClassifier`.
    """

    def __init__(self, backbone, num_classes, exit_interval=3, exit_layers=None,
                 heads=None, num_shallow_stages=None,
                 stage_dropout=dict(shallow=0.5, deep=0.1), loss_weights=None,
                 thresholds=None, loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
                 rate_loss=None, feature='cls_token', data_preprocessor=None,
                 init_cfg=None):
        if feature not in self.FEATURES:
            raise ValueError(f'feature must be one of {self.FEATURES}, got {feature!r}')
        data_preprocessor = dict(data_preprocessor or {})
        data_preprocessor.setdefault('type', 'ClsDataPreprocessor')
        super().__init__(init_cfg=init_cfg, data_preprocessor=data_preprocessor)
        self.feature = feature
        self.backbone = MODELS.build(backbone)
        self.loss_module = MODELS.build(loss)
        self.init_exits(
            lambda spec: ExitHead(self.backbone.embed_dims, num_classes, **spec),
            exit_interval, exit_layers, heads, num_shallow_stages, stage_dropout,
            loss_weights, thresholds, rate_loss)

    FEATURES = ('cls_token', 'avg_featmap')

    def extract_feat(self, inputs):
        """The ``feature`` of the last block's normalised tokens: (B, C)."""
        return self.exit_input(self.backbone.run_blocks(self.backbone.embed(inputs)), 1, None)

    def embed_units(self, inputs, record):
        """(B, 3, H, W) images -> (B, N, C) tokens, one frame each."""
        return self.backbone.embed(inputs, record), 1

    def exit_input(self, x, frames, record):
        """The class token or the mean patch token: (b, C)."""
        if self.feature == 'avg_featmap':
            return x[:, self.backbone.num_fixed_tokens:].mean(1)
        return x[:, 0]

    def head_flops(self, head, record):
        return head.flops()

    def loss(self, inputs, data_samples):
        """``{'loss_exit{j}': lambda_j * CE_j}`` (+ ``loss_rate`` with DyT);
        the targets are the soft ``gt_score`` (K,) where batch augments
        (Mixup / CutMix) wrote them, else the labels."""
        if 'gt_score' in data_samples[0]:
            target = torch.stack([sample.gt_score for sample in data_samples])
        else:
            target = torch.cat([sample.gt_label for sample in data_samples])
        target = target.to(inputs.device)
        return self.exit_losses(inputs, target)

    def predict(self, inputs, data_samples=None):
        """Dynamic inference with ``self.thresholds``.

        Each prediction carries ``pred_score`` / ``pred_label``, the exit it
        left at (``exit_index``) and its multiply-adds (``dyt_flops``: blocks
        and heads it ran, patch embedding and final norm included).
        """
        scores, exit_index, flops, record = self.dynamic_inference(inputs)
        if data_samples is None:
            data_samples = [DataSample() for _ in range(inputs.shape[0])]
        for sample, score, index in zip(data_samples, scores, exit_index):
            sample.set_pred_score(score).set_pred_label(score.argmax(keepdim=True))
            sample.set_metainfo(dict(exit_index=int(index), num_exits=self.num_exits))
        overflow = record.overflow_counts() if record.capacity_mode else None
        return attach_efficiency(data_samples, flops, record.per_sample_rates(), overflow)
