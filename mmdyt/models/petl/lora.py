"""LoRA (Hu et al., 2022) on a frozen linear layer, mergeable for inference."""
import math

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
