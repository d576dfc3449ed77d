"""Dyn-Adapter for mmaction2: early-exit video recognition (Dyn-Adapter
Table 7) on the per-frame backbone, with dynamic inference: a clip leaves
with all its frames at the first exit whose clip-level confidence reaches
its threshold."""
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.model import BaseModel

from ..backbones import FrameDyTVisionTransformer
from ..early_exit import EarlyExitMixin
from ..heads import VideoExitHead
from ..task_mixin import attach_efficiency


@MODELS.register_module()
class EarlyExitRecognizer3D(EarlyExitMixin, BaseModel):
    """Early exits after blocks ``l = i * T`` of a
    :class:`FrameDyTVisionTransformer`, each a :class:`VideoExitHead` (the
    cross-attention query head, head balance as in Dyn-Adapter Sec. 3.2) on
    that block's frame tokens.

    Test views (``num_clips`` x crops) are separate clips that exit on
    their own; a video's ``pred_score`` is the mean of its views' softmax
    scores, its ``dyt_flops`` the mean over its views, its ``exit_index``
    the deepest exit one of its views reached.

    Args:
        backbone (dict): a ``FrameDyTVisionTransformer`` config.
        num_classes (int): K.
        num_heads (int): heads of every exit's cross-attention.
        loss (dict): classification loss per exit.
        data_preprocessor (dict | None): default ``ActionDataPreprocessor``
            (NCTHW).
        **exits: :meth:`EarlyExitMixin.init_exits` arguments
            (``exit_interval``, ``exit_layers``, ``heads``,
            ``num_shallow_stages``, ``stage_dropout``, ``loss_weights``,
            ``thresholds``, ``rate_loss``).
    """

    def __init__(self, backbone, num_classes, num_heads=12,
                 loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
                 data_preprocessor=None, init_cfg=None, **exits):
        data_preprocessor = dict(data_preprocessor or {})
        data_preprocessor.setdefault('type', 'ActionDataPreprocessor')
        data_preprocessor.setdefault('format_shape', 'NCTHW')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if not isinstance(self.backbone, FrameDyTVisionTransformer):
            raise TypeError(f'{type(self).__name__} needs a FrameDyTVisionTransformer '
                            f'backbone, got {type(self.backbone).__name__}')
        self.loss_module = MODELS.build(loss)
        self.init_exits(lambda spec: VideoExitHead(self.backbone.embed_dims, num_classes,
                                                   num_heads, **spec), **exits)

    def embed_units(self, inputs, record):
        """(N, views, C, T, H, W) -> (N * views * T, L, C) frame tokens; a
        unit is one view's clip of T frames."""
        clips = inputs.flatten(0, 1)
        return self.backbone.embed_clips(clips, record), clips.shape[2]

    def exit_input(self, x, frames, record):
        """(n * T, fixed + h * w, C) -> (n, T, 1 + h * w, C) clip tokens."""
        return self.backbone.clip_tokens(x, record)

    def head_flops(self, head, record):
        return head.flops(record.clip_shape[1] * (1 + record.num_patches))

    def loss(self, inputs, data_samples):
        """``{'loss_exit{j}': lambda_j * CE_j}`` (+ ``loss_rate`` with DyT)
        over every view of every video."""
        target = torch.cat([s.gt_label for s in data_samples]).to(inputs.device)
        return self.exit_losses(inputs, target.repeat_interleave(inputs.shape[1]))

    def predict(self, inputs, data_samples=None):
        """Dynamic inference with ``self.thresholds``; per video
        ``pred_score`` / ``pred_label``, ``exit_index``, ``dyt_flops`` and
        ``dyt_rates``."""
        num_videos, num_views = inputs.shape[:2]
        scores, exit_index, flops, record = self.dynamic_inference(inputs)
        scores = scores.view(num_videos, num_views, -1).mean(1)
        exit_index = exit_index.view(num_videos, num_views).max(1).values
        flops = flops.view(num_videos, num_views).mean(1)
        rates = record.per_sample_rates()
        if rates is not None:
            rates = rates.view(num_videos, -1, rates.shape[-1]).mean(1)
        overflow = None
        if record.capacity_mode:
            overflow = record.per_clip(record.overflow_counts()).sum(1)
            overflow = overflow.view(num_videos, num_views).mean(1)
        if data_samples is None:
            data_samples = [ActionDataSample() for _ in range(num_videos)]
        for sample, score, index in zip(data_samples, scores, exit_index):
            sample.set_pred_score(score).set_pred_label(score.argmax(keepdim=True))
            sample.set_metainfo(dict(exit_index=int(index), num_exits=self.num_exits))
        return attach_efficiency(data_samples, flops, rates, overflow)
