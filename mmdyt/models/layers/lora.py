"""LoRA (Hu et al., 2022) on a frozen linear layer, mergeable for inference."""
import math

import torch.nn as nn


class LoRALinear(nn.Module):
    """``base(x) + (alpha / rank) * B(A(x))`` around a frozen ``nn.Linear``.

    Args:
        base (nn.Linear): the pretrained layer; its weights stay frozen.
        rank (int): r, >= 1.
        alpha (float): scaling numerator; the update is scaled by alpha / r.
        dropout (float): dropout on the LoRA branch input.

    Shapes:
        x: (..., in_features) -> (..., out_features)
    """

    def __init__(self, base, rank=8, alpha=8.0, dropout=0.0):
        super().__init__()
        if rank < 1:
            raise ValueError(f'lora_rank must be >= 1, got {rank}')
        self.base = base
        self.lora_down = nn.Linear(base.in_features, rank, bias=False)
        self.lora_up = nn.Linear(rank, base.out_features, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.scaling = alpha / rank
        self.merged = False
        nn.init.kaiming_uniform_(self.lora_down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_up.weight)

    @property
    def in_features(self):
        return self.base.in_features

    @property
    def out_features(self):
        return self.base.out_features

    def forward(self, x):
        out = self.base(x)
        if self.merged:
            return out
        return out + self.lora_up(self.lora_down(self.dropout(x))) * self.scaling

    def merge(self):
        """Fold the update into ``base.weight``; forward then costs one linear."""
        if not self.merged:
            delta = self.lora_up.weight @ self.lora_down.weight * self.scaling
            self.base.weight.data += delta
            self.merged = True

    def flops(self, num_tokens):
        """Multiply-adds of the LoRA branch (zero once merged)."""
        if self.merged:
            return 0
        rank = self.lora_down.out_features
        return num_tokens * rank * (self.in_features + self.out_features)
