"""Dyn-Adapter's early exits on a DyT backbone (paper Sec. 3.2-3.4), shared
by the image classifier and the video recognizer.

:class:`EarlyExitMixin` runs the backbone stage by stage through its
stepping API, puts an exit head after blocks ``l = i * T`` and, at inference,
lets each unit (an image, or a clip with all its frames) leave at the first
head whose confidence reaches its threshold: units that left are not
computed further. The task subclass says how a unit is embedded, what its
head reads and what that head costs.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log

from .heads.early_exit import balanced_head_specs, exit_heads_summary, reaches_threshold
from .petl import set_dropout
from .record import ForwardRecord
from .task_mixin import DyTTaskMixin


class EarlyExitMixin(DyTTaskMixin):
    """Exits, their losses and dynamic inference; the subclass implements
    :meth:`embed_units`, :meth:`exit_input` and :meth:`head_flops` and calls
    :meth:`init_exits` in its ``__init__`` once ``self.backbone`` exists.
    """

    def init_exits(self, build_head, exit_interval=3, exit_layers=None, heads=None,
                   num_shallow_stages=None, stage_dropout=dict(shallow=0.5, deep=0.1),
                   loss_weights=None, thresholds=None, rate_loss=None):
        """Check the exit settings and build the heads.

        Args:
            build_head (callable): a head spec (dict of :class:`ExitHead`
                kwargs) -> head module.
            exit_interval (int): T, exits after blocks T, 2T, ..., L.
            exit_layers (Sequence[int] | None): 1-based blocks with an exit
                (overrides ``exit_interval``); the last must be the last block.
            heads (Sequence[dict] | None): one spec per exit; default
                :func:`balanced_head_specs` (MLP on the shallow half, linear
                on the deep half).
            num_shallow_stages (int | None): stages counted as shallow for
                stage dropout and loss priority; default half of them.
            stage_dropout (dict | None): ``dict(shallow=0.5, deep=0.1)``: rate
                of every dropout of the PETL modules in shallow / deep stages
                (forward sparsification); None keeps the modules' own rates.
            loss_weights (Sequence[float] | None): lambda per exit (default
                all 1.0; :class:`LossPriorityHook` schedules them).
            thresholds (Sequence[float] | None): confidence threshold per exit
                at inference (default all 1.0: the last head for everyone).
            rate_loss (dict | None): activation-rate loss with DyT dispatch.
        """
        if self.dyt_backbone is not self.backbone:
            raise TypeError(f'{type(self).__name__} needs a DyTVisionTransformer backbone, '
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
        self.heads = nn.ModuleList([build_head(spec) for spec in heads])
        print_log(exit_heads_summary(self.heads, self.exit_layers), logger='current')
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
        if any(math.isnan(v) for v in values):
            raise ValueError(f'{name} must be numbers, got NaN in {values} (a NaN threshold would '
                             'never be reached, a NaN weight poisons the loss)')
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

    # ---- what the task says -------------------------------------------------
    def embed_units(self, inputs, record):
        """inputs -> (units x frames, N, C) tokens and frames per unit."""
        raise NotImplementedError

    def exit_input(self, x, frames, record):
        """(n x frames, N, C) tokens -> what an exit head reads for n units."""
        raise NotImplementedError

    def head_flops(self, head, record):
        """Multiply-adds of ``head`` per unit."""
        raise NotImplementedError

    # ---- exits ----------------------------------------------------------------
    def forward(self, inputs, data_samples=None, mode='tensor'):
        """'tensor': the logits of every exit (all units to the end);
        'loss': :meth:`loss`; 'predict': :meth:`predict` (dynamic inference)."""
        if mode == 'tensor':
            return tuple(logits for _, logits, _ in self.run_exits(inputs)[0])
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def run_exits(self, inputs, thresholds=None):
        """Run the backbone stage by stage and every exit head it reaches.

        With ``thresholds`` the units whose confidence reaches an exit's
        threshold leave the batch there (the last exit takes the rest);
        without, every unit runs to the end.

        Args:
            inputs (Tensor): the task's batch of units.
            thresholds (Sequence[float] | None): one per exit.

        Returns:
            tuple: ``exits``, a list with one ``(index, logits, flops)`` per
            exit reached: the (u,) indices of the units that ran the head,
            their (u, K) logits and (u,) float64 multiply-adds up to and
            including this head; ``record``, the backbone's
            :class:`~mmdyt.models.record.ForwardRecord` (rows of the samples
            that ran each block).
        """
        backbone = self.backbone
        record = ForwardRecord()
        x, frames = self.embed_units(inputs, record)
        alive = torch.arange(x.shape[0] // frames, device=x.device)
        offsets = torch.arange(frames, device=x.device)
        heads_flops = 0
        exits = []
        for j, head in enumerate(self.heads):
            start, stop = self.stage_range(j)
            rows = (alive[:, None] * frames + offsets).flatten()
            x = backbone.run_blocks(x, record, start, stop, rows=rows)
            logits = head(self.exit_input(x, frames, record))
            heads_flops += self.head_flops(head, record)
            flops = backbone.flops(record, stop=stop)[alive.cpu()] + heads_flops
            exits.append((alive, logits, flops))
            if thresholds is not None and j < self.num_exits - 1:
                stay = ~reaches_threshold(logits.softmax(-1).max(-1).values, thresholds[j])
                x = x.unflatten(0, (-1, frames))[stay].flatten(0, 1)
                alive = alive[stay]
                if not alive.numel():
                    break
        backbone.warn_on_overflow(record)
        return exits, record

    def exit_losses(self, inputs, target):
        """``{'loss_exit{j}': lambda_j * CE_j}`` (+ ``loss_rate`` with DyT)
        for (units,) labels ``target``."""
        exits, record = self.run_exits(inputs)
        losses = {
            f'loss_exit{j}': weight * self.loss_module(logits, target)
            for j, ((_, logits, _), weight) in enumerate(zip(exits, self.loss_weights))
        }
        losses.update(self.dyt_losses(record))
        return losses

    def dynamic_inference(self, inputs):
        """Dynamic inference with ``self.thresholds``: per unit the (U, K)
        softmax scores, the (U,) exit index, the (U,) float64 multiply-adds
        it ran, and the backbone record."""
        exits, record = self.run_exits(inputs, self.thresholds)
        num_units = exits[0][0].shape[0]
        scores = exits[0][1].new_zeros(num_units, exits[0][1].shape[1])
        exit_index = torch.full((num_units,), -1, dtype=torch.long)
        flops = torch.zeros(num_units, dtype=torch.float64)
        for j, (alive, logits, exit_flops) in enumerate(exits):
            scores[alive] = F.softmax(logits, -1)
            exit_index[alive.cpu()] = j  # later exits overwrite the units that stayed
            flops[alive.cpu()] = exit_flops.cpu()
        return scores, exit_index, flops, record
