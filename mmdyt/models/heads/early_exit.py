"""Early-exit heads of Dyn-Adapter (paper Sec. 3.2, 3.4), toolbox-neutral.

* :class:`ExitHead`: a linear or MLP classifier on the class token.
* :func:`balanced_head_specs`: head balance, heavier (MLP) heads on the
  shallow exits and light (linear) heads on the deep ones;
  :func:`mlp_head_width` sizes the MLP heads from C and K and
  :func:`exit_heads_summary` reports their parameters.
* :func:`reaches_threshold` / :func:`first_exit`: the confidence-threshold
  exit policy (its calibration to a FLOPs budget lives in
  :mod:`mmdyt.engine.exit_calibration`).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..flops import layer_norm_flops, linear_flops

HEAD_TYPES = ('linear', 'mlp')

#: The MLP head's weights relative to the linear head's (C x K) by default.
MLP_HEAD_RATIO = 1.5


def mlp_head_width(in_channels, num_classes, ratio=MLP_HEAD_RATIO):
    """Hidden width h of a default MLP exit head: the smallest with
    ``h * (C + K) >= ratio * C * K`` weights, i.e. ``ratio`` times a linear
    head's, so that the shallow (MLP) heads stay the heavier ones for any K
    (head balance) while their overhead stays of the paper's order
    (Dyn-Adapter Table 1: +0.12-0.17 M on VTAB-1K). For K <= C / 2 the
    bottleneck is at least K wide."""
    if ratio <= 1:
        raise ValueError(f'the MLP head must be heavier than the linear one: ratio > 1, '
                         f'got {ratio}')
    return math.ceil(ratio * in_channels * num_classes / (in_channels + num_classes))


class ExitHead(nn.Module):
    """``[LayerNorm] -> Linear`` or ``[LayerNorm] -> Linear -> GELU ->
    Dropout -> Linear`` on a feature vector.

    Args:
        in_channels (int): C.
        num_classes (int): K.
        type (str): 'linear' or 'mlp'.
        hidden_dims (int | None): MLP hidden width (default
            :func:`mlp_head_width` of C and K).
        dropout (float): dropout before the last linear layer.
        norm (bool): own LayerNorm first (the intermediate block outputs of a
            pre-norm ViT are not normalised).

    Shapes:
        x: (B, C) -> logits (B, K)
    """

    def __init__(self, in_channels, num_classes, type='linear', hidden_dims=None,
                 dropout=0.0, norm=True):
        super().__init__()
        if type not in HEAD_TYPES:
            raise ValueError(f'exit head type must be one of {HEAD_TYPES}, got {type!r}')
        self.type = type
        self.norm = nn.LayerNorm(in_channels, eps=1e-6) if norm else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        if type == 'mlp':
            hidden_dims = hidden_dims or mlp_head_width(in_channels, num_classes)
            self.hidden = nn.Linear(in_channels, hidden_dims)
            self.fc = nn.Linear(hidden_dims, num_classes)
        else:
            self.hidden = None
            self.fc = nn.Linear(in_channels, num_classes)
        nn.init.trunc_normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        x = self.norm(x)
        if self.hidden is not None:
            x = F.gelu(self.hidden(x))
        return self.fc(self.dropout(x))

    def num_parameters(self):
        """Parameters of the head (LayerNorm included)."""
        return sum(p.numel() for p in self.parameters())

    def flops(self, num_tokens=1):
        """Multiply-adds per sample on ``num_tokens`` feature vectors (one:
        the class token)."""
        total = layer_norm_flops(self.norm, num_tokens) + linear_flops(self.fc, num_tokens)
        if self.hidden is not None:
            total += linear_flops(self.hidden, num_tokens)
        return total


def exit_heads_summary(heads, exit_layers):
    """One line with the parameters of the exit heads (all, per exit, and
    those before the last block: the overhead over a one-head baseline)."""
    sizes = [sum(p.numel() for p in head.parameters()) for head in heads]
    per_exit = ', '.join(f'block {layer} {size / 1e6:.3f}'
                         for layer, size in zip(exit_layers, sizes))
    return (f'Exit heads: {sum(sizes) / 1e6:.3f} M ({per_exit}; '
            f'{sum(sizes[:-1]) / 1e6:.3f} M before the last block)')


def balanced_head_specs(num_exits, num_heavy=None, hidden_dims=None, last_norm=False):
    """Head balance: MLP heads on the first ``num_heavy`` exits (default
    half of them), linear heads on the rest.

    Args:
        num_exits (int): S.
        num_heavy (int | None): exits with an MLP head.
        hidden_dims (int | None): MLP hidden width.
        last_norm (bool): whether the last head has its own LayerNorm (False
            when the backbone's final norm precedes it).

    Returns:
        list[dict]: keyword arguments of :class:`ExitHead`, one per exit.
    """
    num_heavy = num_exits // 2 if num_heavy is None else num_heavy
    if not 0 <= num_heavy <= num_exits:
        raise ValueError(f'num_heavy must be in [0, {num_exits}], got {num_heavy}')
    specs = [dict(type='mlp', hidden_dims=hidden_dims) if i < num_heavy else
             dict(type='linear') for i in range(num_exits)]
    specs[-1]['norm'] = last_norm
    return specs


def reaches_threshold(confidence, threshold):
    """``confidence >= threshold``, never for a threshold of 1.0 or more
    (that disables an exit even for a saturated softmax). Broadcasts."""
    return (confidence >= threshold) & (torch.as_tensor(threshold) < 1).to(confidence.device)


def first_exit(confidences, thresholds):
    """Index of the first exit whose confidence reaches its threshold.

    A sample leaves at exit j when ``confidences[:, j] >= thresholds[j]``; a
    threshold of 1.0 or more disables its exit; the last exit takes whatever
    is left (its threshold is ignored).

    Args:
        confidences (Tensor): (B, S) max softmax probability per exit.
        thresholds (Sequence[float] | Tensor): (S,).

    Returns:
        Tensor: (B,) long exit indices.
    """
    thresholds = torch.as_tensor(thresholds, dtype=confidences.dtype,
                                 device=confidences.device)
    if thresholds.shape != confidences.shape[1:]:
        raise ValueError(f'{confidences.shape[1]} exits need as many thresholds, '
                         f'got {thresholds.tolist()}')
    passed = reaches_threshold(confidences, thresholds)
    passed[:, -1] = True
    return passed.int().argmax(1)
