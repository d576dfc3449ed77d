"""LoRA (Hu et al., 2022) on a frozen linear layer (or on output slices of a
fused one, e.g. q and v of qkv), mergeable for inference."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import PETLLinear


class LoRALinear(PETLLinear):
    """``W0 x + b0 + (alpha / rank) * B(A(dropout(x)))`` with ``W0, b0``
    the pretrained layer's, frozen.

    Args:
        base (nn.Linear): the pretrained layer.
        rank (int): r, >= 1.
        alpha (float): scaling numerator; the update is scaled by alpha / r.
        dropout (float): dropout on the LoRA branch input.

    Shapes:
        x: (..., in_features) -> (..., out_features)
    """
    mergeable = True

    def __init__(self, base, rank=8, alpha=8.0, dropout=0.0):
        if rank < 1:
            raise ValueError(f'LoRA rank must be >= 1, got {rank}')
        super().__init__(base)
        self.lora_down = nn.Linear(base.in_features, rank, bias=False)
        self.lora_up = nn.Linear(rank, base.out_features, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.scaling = alpha / rank
        nn.init.kaiming_uniform_(self.lora_down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_up.weight)

    def forward_unmerged(self, x):
        out = F.linear(x, self.weight, self.bias)
        return out + self.lora_up(self.lora_down(self.dropout(x))) * self.scaling

    def _delta(self):
        return self.lora_up.weight @ self.lora_down.weight * self.scaling

    def _merge(self):
        self.weight.add_(self._delta())

    def _unmerge(self):
        self.weight.sub_(self._delta())

    def extra_flops(self, num_tokens):
        rank = self.lora_down.out_features
        return num_tokens * rank * (self.in_features + self.out_features)


class SlicedLoRALinear(PETLLinear):
    """LoRA on output slices of a fused linear layer: the ``qkv`` projection
    seen as ``num_chunks`` equal chunks (q, k, v), with one rank-``rank``
    pair ``B_j A_j`` per adapted chunk ``j`` in ``slices`` (LoRA's own form:
    separate q and v updates, k untouched).

    ``y = W0 x + b0``, then ``y[chunk j] += (alpha / rank) * B_j A_j
    dropout(x)`` for ``j`` in ``slices``. Mergeable: the updates fill the
    rows of their chunks of ``W0``.

    Args:
        base (nn.Linear): the pretrained fused layer.
        slices (Sequence[int]): adapted chunks, e.g. ``(0, 2)`` for q and v.
        num_chunks (int): equal chunks of the output (3 for qkv).
        rank (int): r per chunk, >= 1.
        alpha (float): the updates are scaled by alpha / r.
        dropout (float): dropout on the LoRA input.

    Shapes:
        x: (..., in_features) -> (..., out_features)
    """
    mergeable = True

    def __init__(self, base, slices, num_chunks=3, rank=8, alpha=8.0, dropout=0.0):
        if rank < 1:
            raise ValueError(f'LoRA rank must be >= 1, got {rank}')
        slices = tuple(sorted(set(int(s) for s in slices)))
        if not slices or slices[0] < 0 or slices[-1] >= num_chunks \
                or base.out_features % num_chunks:
            raise ValueError(f'slices {list(slices)} must be chunks of the {num_chunks} equal '
                             f'chunks of the {base.out_features} outputs')
        super().__init__(base)
        self.slices = slices
        self.num_chunks = num_chunks
        self.rank = rank
        chunk = base.out_features // num_chunks
        self.lora_down = nn.Linear(base.in_features, len(slices) * rank, bias=False)
        self.lora_up = nn.Parameter(torch.zeros(len(slices), chunk, rank))
        self.register_buffer('slice_index', torch.tensor(slices), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.scaling = alpha / rank
        for down in self.lora_down.weight.view(len(slices), rank, -1):
            nn.init.kaiming_uniform_(down, a=math.sqrt(5))

    def _updates(self, x):
        """(..., in) -> (..., len(slices), chunk): the scaled update per slice."""
        low = self.lora_down(self.dropout(x)).unflatten(-1, (len(self.slices), self.rank))
        return torch.einsum('...sr,scr->...sc', low, self.lora_up) * self.scaling

    def forward_unmerged(self, x):
        out = F.linear(x, self.weight, self.bias).unflatten(-1, (self.num_chunks, -1))
        return out.index_add(-2, self.slice_index, self._updates(x)).flatten(-2)

    def _delta(self):
        down = self.lora_down.weight.view(len(self.slices), self.rank, -1)
        rows = torch.einsum('scr,sri->sci', self.lora_up, down) * self.scaling
        delta = rows.new_zeros(self.num_chunks, *rows.shape[1:])
        return delta.index_copy(0, self.slice_index, rows).flatten(0, 1)

    def _merge(self):
        self.weight.add_(self._delta())

    def _unmerge(self):
        self.weight.sub_(self._delta())

    def extra_flops(self, num_tokens):
        chunk = self.out_features // self.num_chunks
        return num_tokens * len(self.slices) * self.rank * (self.in_features + chunk)
