"""What happened in one forward of a backbone.

A backbone fills the :class:`ForwardRecord` its caller passes (``backbone(x,
record=record)``); the activation rates, the rate loss, the FLOPs
(``backbone.flops(record)``), the activation logger, the efficiency metric
and the early-exit bookkeeping are functions of it. No module keeps the
results of its last forward. :func:`record_forwards` gives a record to every
forward of a backbone that a toolbox calls without one (mmseg's sliding
windows, a whole-model FLOPs count).
"""
import contextlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor


@dataclass
class BlockRecord:
    """One block's forward.

    Attributes:
        index (int): the block's index in the backbone.
        num_tokens (int): tokens per sample entering the block (N).
        masks (dict[str, Tensor]): dispatched part ('attn', 'mlp', 'layer')
            -> its (b, N) mask, 1 / True = active (float with a
            straight-through gradient in training, bool in evaluation).
        rows (Tensor | None): (b,) rows of the forward's batch that ran the
            block (samples that left at an early exit do not); None = all.
        part_tokens (dict[str, int]): tokens per sample a part ran on where
            a token reduction changed the count inside the block (e.g.
            'mlp' after a ToMe merge, 'predictor' of DynamicViT).
        carry (dict[str, Tensor]): what a token reduction hands the next
            block (ToMe's token sizes, DynamicViT's keep policy) or its
            losses (DynamicViT's keep decisions).
        capacity (dict[str, int]): dispatched part -> tokens per sample it
            computed in capacity mode (``ceil(capacity * N)``).
        overflow (dict[str, Tensor]): dispatched part -> (b,) active tokens
            that capacity mode left out.
    """
    index: int
    num_tokens: int
    masks: Dict[str, Tensor] = field(default_factory=dict)
    rows: Optional[Tensor] = None
    part_tokens: Dict[str, int] = field(default_factory=dict)
    carry: Dict[str, Tensor] = field(default_factory=dict)
    capacity: Dict[str, int] = field(default_factory=dict)
    overflow: Dict[str, Tensor] = field(default_factory=dict)

    def add_part(self, part, outcome):
        """Keep what dispatched part ``part`` did: its
        :class:`~mmdyt.models.layers.PartOutcome` (mask, and in capacity mode
        the tokens computed and the active ones left out)."""
        self.masks[part] = outcome.mask
        if outcome.capacity is not None:
            self.capacity[part] = outcome.capacity
            self.overflow[part] = outcome.overflow

    def tokens(self, part):
        """Tokens per sample entering ``part``: N unless a token reduction
        changed the count inside the block."""
        return self.part_tokens.get(part, self.num_tokens)

    def computed_tokens(self, part):
        """Tokens per sample that sub-layer ``part`` ('attn' or 'mlp')
        computed: (b,) float64 on the CPU when dispatched, else
        :meth:`tokens`; in capacity mode the fixed count it computed."""
        key = part if part in self.masks else 'layer'
        if key in self.capacity:
            return self.capacity[key]
        mask = self.masks.get(part, self.masks.get('layer'))
        if mask is None:
            return self.tokens(part)
        if mask.is_meta:
            raise ValueError('this record is of a forward on the meta device: its masks hold no '
                             'values, so the tokens computed (and FLOPs) are unknown; run the '
                             'forward on real data')
        return mask.detach().sum(1).to('cpu', torch.float64)


@dataclass
class ForwardRecord:
    """One forward of a backbone.

    Attributes:
        batch_size (int): B, samples (images or frames) of the forward.
        num_tokens (int): tokens per sample entering the first block.
        num_fixed_tokens (int): leading tokens never dispatched (class
            token, prompts).
        grid (tuple[int, int]): patch grid (h, w) of the input.
        dispatcher_names (list[str]): every dispatcher of the backbone, in
            order (``blocks.{i}.{part}``), whether it ran or not.
        blocks (list[BlockRecord]): the blocks that ran, in order.
        clip_shape (tuple[int, int] | None): (clips, frames) when the batch
            is the frames of video clips.
    """
    batch_size: int = 0
    num_tokens: int = 0
    num_fixed_tokens: int = 1
    grid: Tuple[int, int] = (0, 0)
    dispatcher_names: List[str] = field(default_factory=list)
    blocks: List[BlockRecord] = field(default_factory=list)
    clip_shape: Optional[Tuple[int, int]] = None

    @property
    def num_patches(self):
        return self.grid[0] * self.grid[1]

    def named_masks(self):
        """Dispatcher name -> (b, N) mask, for the dispatchers that ran."""
        return {f'blocks.{block.index}.{part}': mask
                for block in self.blocks for part, mask in block.masks.items()}

    def masks(self):
        """The masks of :meth:`named_masks`, in dispatcher order."""
        return list(self.named_masks().values())

    def _patch_rates(self):
        fixed = self.num_fixed_tokens
        return {name: mask[:, fixed:].detach().float().mean(1)
                for name, mask in self.named_masks().items()}

    def activation_rates(self):
        """(num_dispatchers,) rate over the rows that ran and their patch
        tokens; dispatchers that did not run count 0."""
        rates = self._patch_rates()
        return torch.stack([rates[name].mean().cpu() if name in rates else torch.zeros(())
                            for name in self.dispatcher_names]) \
            if self.dispatcher_names else torch.zeros(0)

    def per_sample_rates(self):
        """(B, num_dispatchers) rate of each sample's patch tokens on the CPU
        (0 where a sample did not run the dispatcher), or None without
        dispatchers."""
        if not self.dispatcher_names:
            return None
        rates = self._patch_rates()
        rows = {f'blocks.{b.index}.{part}': b.rows for b in self.blocks for part in b.masks}
        out = torch.zeros(self.batch_size, len(self.dispatcher_names))
        for j, name in enumerate(self.dispatcher_names):
            if name in rates:
                index = rows[name]
                out[:, j].index_copy_(0, torch.arange(self.batch_size) if index is None
                                      else index.cpu(), rates[name].cpu())
        return out

    @property
    def capacity_mode(self):
        """Whether a dispatcher ran in capacity mode."""
        return any(block.capacity for block in self.blocks)

    def overflow_counts(self):
        """Capacity mode: (B,) active tokens per sample left out for lack of
        capacity, summed over the dispatchers (0 without capacity mode)."""
        out = torch.zeros(self.batch_size)
        for block in self.blocks:
            for count in block.overflow.values():
                out.index_add_(0, torch.arange(self.batch_size) if block.rows is None
                               else block.rows.cpu(), count.detach().cpu().float())
        return out

    def overflow_share(self):
        """Capacity mode: the share of the active tokens (over all samples
        and dispatchers) left out, 0.0 without capacity mode."""
        active = sum(float(block.masks[part].sum()) for block in self.blocks
                     for part in block.overflow)
        return float(self.overflow_counts().sum()) / active if active else 0.0

    def per_clip(self, values):
        """(N * T, ...) per-frame values -> (N, T, ...) per clip."""
        if self.clip_shape is None:
            return values
        return values.view(*self.clip_shape, *values.shape[1:])


@contextlib.contextmanager
def record_forwards(backbone):
    """Collect a :class:`ForwardRecord` of every forward of ``backbone``
    within the block, including those a toolbox calls without a record.

    Yields:
        list[ForwardRecord]: filled in call order.
    """
    records = []

    def give_record(module, args, kwargs):
        if kwargs.get('record') is None:
            kwargs['record'] = ForwardRecord()
        records.append(kwargs['record'])
        return args, kwargs

    handle = backbone.register_forward_pre_hook(give_record, with_kwargs=True)
    try:
        yield records
    finally:
        handle.remove()
