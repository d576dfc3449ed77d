"""Bottleneck adapter (AdaptFormer / DyT Eq. 1) and the MoE-adapter (Eq. 7)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _check_positive(name, value):
    if value < 1:
        raise ValueError(f'{name} must be >= 1, got {value}')


class Adapter(nn.Module):
    """``scale * up(dropout(relu(down(x))))`` with ``up`` zero-initialised.

    Args:
        embed_dims (int): C.
        bottleneck_dims (int): d.
        scale (float): output scale (0.1 for full datasets, 1.0 for VTAB-1K).
        dropout (float): dropout after the activation.

    Shapes:
        x: (..., C) -> (..., C)
    """

    def __init__(self, embed_dims, bottleneck_dims=64, scale=1.0, dropout=0.1):
        super().__init__()
        _check_positive('adapter_dim', bottleneck_dims)
        self.down = nn.Linear(embed_dims, bottleneck_dims)
        self.up = nn.Linear(bottleneck_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)
        self.scale = scale
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x):
        return self.up(self.dropout(F.relu(self.down(x)))) * self.scale

    def flops(self, num_tokens):
        """Multiply-adds for ``num_tokens`` tokens."""
        return 2 * num_tokens * self.down.in_features * self.down.out_features


class MoEAdapter(nn.Module):
    """Mixture-of-experts adapter whose experts are merged per sample (Eq. 7).

    A router ``Linear(C, N)`` reads the mean of all tokens of a sample and
    gives expert weights ``a = softmax(router(mean(x)))`` (normalised to sum
    to one over the N experts). The experts are merged into one weight pair
    per sample, ``W_down = sum_i a_i W_down^i`` and ``W_up = sum_i a_i W_up^i``
    (biases likewise), so the tokens pay the FLOPs of one adapter.

    Args:
        embed_dims (int): C.
        bottleneck_dims (int): d.
        num_experts (int): N.
        scale (float): output scale.
        dropout (float): dropout after the activation.

    Shapes:
        x: (B, L, C) -> (B, L, C)
    """

    def __init__(self, embed_dims, bottleneck_dims=64, num_experts=4,
                 scale=1.0, dropout=0.1):
        super().__init__()
        _check_positive('adapter_dim', bottleneck_dims)
        _check_positive('num_experts', num_experts)
        self.router = nn.Linear(embed_dims, num_experts)
        self.down_weight = nn.Parameter(
            torch.empty(num_experts, embed_dims, bottleneck_dims))
        self.down_bias = nn.Parameter(torch.zeros(num_experts, bottleneck_dims))
        self.up_weight = nn.Parameter(
            torch.zeros(num_experts, bottleneck_dims, embed_dims))
        self.up_bias = nn.Parameter(torch.zeros(num_experts, embed_dims))
        self.dropout = nn.Dropout(dropout)
        self.scale = scale
        bound = 1 / math.sqrt(embed_dims)
        nn.init.uniform_(self.down_weight, -bound, bound)

    def expert_weights(self, x):
        """(B, L, C) -> (B, N) routing weights that sum to one."""
        return self.router(x.mean(1)).softmax(-1)

    def forward(self, x):
        a = self.expert_weights(x)
        down_w = torch.einsum('bn,ncd->bcd', a, self.down_weight)
        down_b = a @ self.down_bias
        up_w = torch.einsum('bn,ndc->bdc', a, self.up_weight)
        up_b = a @ self.up_bias
        hidden = self.dropout(F.relu(torch.baddbmm(down_b[:, None], x, down_w)))
        return torch.baddbmm(up_b[:, None], hidden, up_w) * self.scale

    def flops(self, num_tokens):
        """Per-sample multiply-adds: the tokens' matmuls (one adapter's) plus
        routing and merging, which a sample pays once, not per token."""
        num_experts, embed_dims, bottleneck_dims = self.down_weight.shape
        tokens = 2 * num_tokens * embed_dims * bottleneck_dims
        return tokens + embed_dims * num_experts + 2 * num_experts * embed_dims * bottleneck_dims


def build_adapter(embed_dims, bottleneck_dims, num_experts=1, scale=1.0,
                  dropout=0.1):
    """An :class:`Adapter` for ``num_experts == 1``, else a :class:`MoEAdapter`."""
    _check_positive('num_experts', num_experts)
    if num_experts == 1:
        return Adapter(embed_dims, bottleneck_dims, scale, dropout)
    return MoEAdapter(embed_dims, bottleneck_dims, num_experts, scale, dropout)
