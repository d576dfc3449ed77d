"""Dyn-Adapter for mmpretrain: early-exit classification on the shared
backbone, with dynamic inference (paper Sec. 3.2-3.4).

:class:`EarlyExitClassifier` runs the :class:`DyTVisionTransformer` block by
block itself, puts an exit head after blocks ``l = i * T`` and, at inference,
lets each sample leave at the first head whose confidence reaches its
threshold: exited samples leave the batch and are not computed further.
:class:`EarlyExitMetric` reports accuracy, mean GFLOPs and the exit histogram.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmpretrain.models.classifiers import BaseClassifier
from mmpretrain.registry import METRICS, MODELS
from mmpretrain.structures import DataSample

from ..backbones import DyTVisionTransformer, load_vit_checkpoint
from ..backbones.dyt_vit import LN_FLOPS_PER_ELEMENT
from ..heads.early_exit import ExitHead, balanced_head_specs, reaches_threshold
from ..peft_state import install_peft_state
from ..petl import set_dropout
from ..task_utils import attach_efficiency, build_rate_loss, rate_losses


def embed_flops(backbone, num_tokens):
    """Multiply-adds of the patch embedding for one sample."""
    proj = backbone.patch_embed.proj
    num_patches = num_tokens - backbone.num_fixed_tokens
    return num_patches * proj.out_channels * proj.in_channels * backbone.patch_size**2


@MODELS.register_module()
class EarlyExitClassifier(BaseClassifier):
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
        if not isinstance(self.backbone, DyTVisionTransformer):
            raise ValueError('EarlyExitClassifier needs a DyTVisionTransformer backbone, '
                             f'got {type(self.backbone).__name__}')
        if self.backbone.num_prompts:
            raise ValueError('EarlyExitClassifier does not support VPT prompts (num_prompts > 0)')
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
        self.rate_loss = build_rate_loss(rate_loss)
        self.set_loss_weights([1.0] * num_exits if loss_weights is None else loss_weights)
        self.thresholds = self._check_per_exit(
            'thresholds', [1.0] * num_exits if thresholds is None else thresholds)
        if stage_dropout is not None:
            self.set_stage_dropout(**stage_dropout)
        backbone_module = self.backbone
        install_peft_state(self, lambda: backbone_module.pretrained,
                           lambda path: load_vit_checkpoint(backbone_module, path))

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

    def stage_blocks(self, stage):
        """0-based indices of the blocks of stage ``stage`` (0-based)."""
        start = self.exit_layers[stage - 1] if stage else 0
        return range(start, self.exit_layers[stage])

    def set_stage_dropout(self, shallow=0.5, deep=0.1):
        """Forward sparsification: dropout ``shallow`` in the PETL modules of
        the first ``num_shallow_stages`` stages, ``deep`` in the others."""
        for stage in range(self.num_exits):
            rate = shallow if stage < self.num_shallow_stages else deep
            for index in self.stage_blocks(stage):
                set_dropout(self.backbone.blocks[index], rate)

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
        x, _ = self.backbone.embed(inputs)
        for block in self.backbone.blocks:
            x = block(x, skip_inactive=self.backbone.skip_inactive and not self.training)
        return self.backbone.norm(x)[:, 0]

    def run_exits(self, inputs, thresholds=None):
        """Run the backbone block by block and every exit head it reaches.

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
            including this head; ``rates``, (B, num_dispatchers) activation
            rates (0 for blocks a sample did not run), or None without DyT.
        """
        backbone = self.backbone
        x, _ = backbone.embed(inputs)
        batch_size, num_tokens = x.shape[:2]
        skip = backbone.skip_inactive and not self.training
        alive = torch.arange(batch_size, device=x.device)
        flops = torch.full((batch_size,), float(embed_flops(backbone, num_tokens)),
                           dtype=torch.float64, device=x.device)
        num_dispatchers = len(backbone.dispatchers())
        rates = x.new_zeros(batch_size, num_dispatchers) if num_dispatchers else None
        dispatcher = 0
        exits = []
        for i, block in enumerate(backbone.blocks):
            x = block(x, skip_inactive=skip)
            flops[alive] += block.flops(num_tokens)
            for mask in block.masks:
                patches = mask[:, backbone.num_fixed_tokens:].detach()
                rates[alive, dispatcher] = patches.float().mean(1)
                dispatcher += 1
            if i == backbone.num_layers - 1 and backbone.final_norm:
                x = backbone.norm(x)
                flops[alive] += LN_FLOPS_PER_ELEMENT * backbone.embed_dims * num_tokens
            if i + 1 not in self.exit_layers:
                continue
            j = self.exit_layers.index(i + 1)
            logits = self.heads[j](x[:, 0])
            flops[alive] += self.heads[j].flops()
            exits.append((alive, logits, flops[alive].clone()))
            if thresholds is not None and j < self.num_exits - 1:
                confidence = logits.softmax(-1).max(-1).values
                stay = ~reaches_threshold(confidence, thresholds[j])
                x, alive = x[stay], alive[stay]
                if not alive.numel():
                    break
        return exits, (rates.detach().cpu() if rates is not None else None)

    def loss(self, inputs, data_samples):
        """``{'loss_exit{j}': lambda_j * CE_j}`` (+ ``loss_rate`` with DyT)."""
        exits, _ = self.run_exits(inputs)
        target = torch.cat([sample.gt_label for sample in data_samples]).to(inputs.device)
        losses = {
            f'loss_exit{j}': weight * self.loss_module(logits, target)
            for j, ((_, logits, _), weight) in enumerate(zip(exits, self.loss_weights))
        }
        losses.update(rate_losses(self.backbone, self.rate_loss))
        return losses

    def predict(self, inputs, data_samples=None):
        """Dynamic inference with ``self.thresholds``.

        Each prediction carries ``pred_score`` / ``pred_label``, the exit it
        left at (``exit_index``) and its multiply-adds (``dyt_flops``: blocks
        and heads it ran, patch embedding and final norm included).
        """
        exits, rates = self.run_exits(inputs, self.thresholds)
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
        return attach_efficiency(data_samples, flops, rates)


@METRICS.register_module()
class EarlyExitMetric(BaseMetric):
    """Top-1 accuracy, mean GFLOPs and the exit histogram of dynamic inference.

    Reads ``pred_label``, ``gt_label`` and the ``exit_index``, ``num_exits``
    and ``dyt_flops`` metainfo of :class:`EarlyExitClassifier` predictions.
    Reports ``accuracy`` (%), ``gflops``, and per exit j ``exit{j}_ratio``
    (fraction of samples leaving there) and ``exit{j}_accuracy`` (%, of those
    samples; absent when none left there).
    """
    default_prefix = 'early_exit'

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            if 'exit_index' not in sample:
                raise KeyError('EarlyExitMetric needs predictions from EarlyExitClassifier '
                               '(no exit_index in the data sample)')
            self.results.append((int(sample['pred_label'][0]), int(sample['gt_label'][0]),
                                 sample['exit_index'], sample['num_exits'],
                                 sample['dyt_flops']))

    def compute_metrics(self, results):
        pred, gt, exits, num_exits, flops = (torch.tensor(c, dtype=torch.float64)
                                             for c in zip(*results))
        correct = (pred == gt).double()
        metrics = dict(accuracy=100 * correct.mean().item(),
                       gflops=flops.mean().item() / 1e9)
        for j in range(int(num_exits.max())):
            here = exits == j
            metrics[f'exit{j}_ratio'] = here.double().mean().item()
            if here.any():
                metrics[f'exit{j}_accuracy'] = 100 * correct[here].mean().item()
        return metrics
