"""Dyn-Adapter for mmpretrain: early-exit classification on the shared
backbone, with dynamic inference (paper Sec. 3.2-3.4).

:class:`EarlyExitClassifier` runs the :class:`DyTVisionTransformer` stage by
stage through its stepping API, puts an exit head after blocks ``l = i * T``
and, at inference, lets each sample leave at the first head whose confidence
reaches its threshold: exited samples leave the batch and are not computed
further. :class:`mmdyt.evaluation.EarlyExitMetric` reports accuracy, mean
GFLOPs and the exit histogram.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.classifiers import BaseClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..heads.early_exit import ExitHead, balanced_head_specs, reaches_threshold
from ..petl import set_dropout
from ..record import ForwardRecord
from ..task_utils import DyTTaskMixin, attach_efficiency


@MODELS.register_module()
class EarlyExitClassifier(DyTTaskMixin, BaseClassifier):
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
        data_preprocessor (dict | None): default ``ClsDataPreprocessor``.

    Checkpoints keep only the trainable weights plus the backbone's
    ``pretrained`` name, as for :class:`DyTImageClassifier`.
    """

    def __init__(self, backbone, num_classes, exit_interval=3, exit_layers=None,
                 heads=None, num_shallow_stages=None,
                 stage_dropout=dict(shallow=0.5, deep=0.1), loss_weights=None,
                 thresholds=None, loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
                 rate_loss=None, data_preprocessor=None, init_cfg=None):
        data_preprocessor = dict(data_preprocessor or {})
        data_preprocessor.setdefault('type', 'ClsDataPreprocessor')
        super().__init__(init_cfg=init_cfg, data_preprocessor=data_preprocessor)
        self.backbone = MODELS.build(backbone)
        if self.dyt_backbone is not self.backbone:
            raise TypeError('EarlyExitClassifier needs a DyTVisionTransformer backbone, '
                            f'got {type(self.backbone).__name__}')
        num_layers = self.backbone.num_layers
        if exit_layers is None:
            if exit_interval < 1 or num_layers % exit_interval:
                raise ValueError(f'exit_interval={exit_interval} must divide the '
                                 f'{num_layers} blocks')
            exit_layers = range(exit_interval, num_layers + 1, exit_interval)
        self.exit_layers = [int(layer) for layer in exit_layers]
        if (sorted(set(self.exit_layers)) != self.exit_layers or self.exit_layers[0] < 1
                or self.exit_layers[-1] != num_layers):
            raise ValueError(f'exit_layers must increase from >= 1 to the last block '
                             f'{num_layers}, got {self.exit_layers}')
        num_exits = len(self.exit_layers)
        self.num_shallow_stages = num_exits // 2 if num_shallow_stages is None \
            else num_shallow_stages
        if heads is None:
            heads = balanced_head_specs(num_exits, last_norm=not self.backbone.final_norm)
        if len(heads) != num_exits:
            raise ValueError(f'{num_exits} exits need {num_exits} head specs, got {len(heads)}')
        self.heads = nn.ModuleList([
            ExitHead(self.backbone.embed_dims, num_classes, **spec) for spec in heads
        ])
        self.loss_module = MODELS.build(loss)
        self.set_loss_weights([1.0] * num_exits if loss_weights is None else loss_weights)
        self.thresholds = self._check_per_exit(
            'thresholds', [1.0] * num_exits if thresholds is None else thresholds)
        if stage_dropout is not None:
            self.set_stage_dropout(**stage_dropout)
        self.init_dyt(rate_loss)

    @property
    def num_exits(self):
        return len(self.exit_layers)

    def _check_per_exit(self, name, values):
        values = [float(v) for v in values]
        if len(values) != self.num_exits:
            raise ValueError(f'{name} needs one value per exit ({self.num_exits}), got {values}')
        return values

    def set_loss_weights(self, weights):
        """lambda_l per exit (the loss is ``sum_l lambda_l * CE_l``)."""
        self.loss_weights = self._check_per_exit('loss_weights', weights)

    def stage_range(self, stage):
        """(start, stop) indices of the blocks of stage ``stage`` (0-based)."""
        return (self.exit_layers[stage - 1] if stage else 0), self.exit_layers[stage]

    def set_stage_dropout(self, shallow=0.5, deep=0.1):
        """Forward sparsification: dropout ``shallow`` in the PETL modules of
        the first ``num_shallow_stages`` stages, ``deep`` in the others."""
        for stage in range(self.num_exits):
            start, stop = self.stage_range(stage)
            set_dropout(self.backbone.blocks[start:stop],
                        shallow if stage < self.num_shallow_stages else deep)

    # ---- forward ------------------------------------------------------------
    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'tensor':
            return tuple(logits for _, logits, _ in self.run_exits(inputs)[0])
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def extract_feat(self, inputs):
        """Normalised class token of the last block: (B, C)."""
        return self.backbone.run_blocks(self.backbone.embed(inputs))[:, 0]

    def run_exits(self, inputs, thresholds=None):
        """Run the backbone stage by stage (its stepping API) and every exit
        head it reaches.

        With ``thresholds`` the samples whose confidence reaches an exit's
        threshold leave the batch there (the last exit takes the rest);
        without, every sample runs to the end.

        Args:
            inputs (Tensor): (B, 3, H, W).
            thresholds (Sequence[float] | None): one per exit.

        Returns:
            tuple: ``exits``, a list with one ``(index, logits, flops)`` per
            exit reached: the (b,) batch indices of the samples that ran the
            head, their (b, K) logits and (b,) float64 multiply-adds up to and
            including this head; ``record``, the
            :class:`~mmdyt.models.record.ForwardRecord` of the backbone
            (rows of the samples that ran each block).
        """
        backbone = self.backbone
        record = ForwardRecord()
        x = backbone.embed(inputs, record)
        alive = torch.arange(x.shape[0], device=x.device)
        heads_flops = 0
        exits = []
        for j, head in enumerate(self.heads):
            start, stop = self.stage_range(j)
            x = backbone.run_blocks(x, record, start, stop, rows=alive)
            logits = head(x[:, 0])
            heads_flops += head.flops()
            flops = backbone.flops(record, stop=stop)[alive.cpu()] + heads_flops
            exits.append((alive, logits, flops))
            if thresholds is not None and j < self.num_exits - 1:
                stay = ~reaches_threshold(logits.softmax(-1).max(-1).values, thresholds[j])
                x, alive = x[stay], alive[stay]
                if not alive.numel():
                    break
        return exits, record

    def loss(self, inputs, data_samples):
        """``{'loss_exit{j}': lambda_j * CE_j}`` (+ ``loss_rate`` with DyT)."""
        exits, record = self.run_exits(inputs)
        target = torch.cat([sample.gt_label for sample in data_samples]).to(inputs.device)
        losses = {
            f'loss_exit{j}': weight * self.loss_module(logits, target)
            for j, ((_, logits, _), weight) in enumerate(zip(exits, self.loss_weights))
        }
        losses.update(self.dyt_losses(record))
        return losses

    def predict(self, inputs, data_samples=None):
        """Dynamic inference with ``self.thresholds``.

        Each prediction carries ``pred_score`` / ``pred_label``, the exit it
        left at (``exit_index``) and its multiply-adds (``dyt_flops``: blocks
        and heads it ran, patch embedding and final norm included).
        """
        exits, record = self.run_exits(inputs, self.thresholds)
        batch_size = inputs.shape[0]
        scores = inputs.new_zeros(batch_size, exits[0][1].shape[1])
        exit_index = torch.full((batch_size,), -1, dtype=torch.long)
        flops = torch.zeros(batch_size, dtype=torch.float64)
        for j, (alive, logits, exit_flops) in enumerate(exits):
            scores[alive] = F.softmax(logits, -1)
            exit_index[alive.cpu()] = j  # later exits overwrite the samples that stayed
            flops[alive.cpu()] = exit_flops.cpu()
        if data_samples is None:
            data_samples = [DataSample() for _ in range(batch_size)]
        for sample, score, index in zip(data_samples, scores, exit_index):
            sample.set_pred_score(score).set_pred_label(score.argmax(keepdim=True))
            sample.set_metainfo(dict(exit_index=int(index), num_exits=self.num_exits))
        return attach_efficiency(data_samples, flops, record.per_sample_rates())
