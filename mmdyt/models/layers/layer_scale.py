"""LayerScale (CaiT, DINOv2): a learned per-channel scale of a branch's
output."""
import torch
import torch.nn as nn

from ..flops import elementwise_flops


class LayerScale(nn.Module):
    """``x * gamma``, ``gamma`` (C,) initialised to ``init_value``.

    Shapes:
        x: (..., C) -> (..., C)
    """

    def __init__(self, embed_dims, init_value=1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((embed_dims, ), float(init_value)))

    def forward(self, x):
        return x * self.gamma

    def flops(self, num_tokens):
        """One multiply per element of ``num_tokens`` tokens."""
        return elementwise_flops(num_tokens, self.gamma.numel())


def build_layer_scale(embed_dims, init_value):
    """A :class:`LayerScale`, or ``nn.Identity`` for ``init_value`` None / 0
    (no LayerScale: the plain ViT)."""
    if not init_value:
        return nn.Identity()
    return LayerScale(embed_dims, init_value)
