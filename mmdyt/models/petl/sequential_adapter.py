"""Houlsby-style sequential adapter after a projection (Houlsby et al., 2019)."""
import torch.nn.functional as F

from ..layers import Adapter
from .base import PETLLinear


class SequentialAdapterLinear(PETLLinear):
    """``y = W0 x + b0; y + adapter(y)``: the pretrained ``attn.proj`` or
    ``mlp.fc2`` followed by a bottleneck
    :class:`~mmdyt.models.layers.Adapter` with its own skip connection,
    before the block's residual sum. Not mergeable (the adapter is
    non-linear).

    Args:
        base (nn.Linear): the pretrained layer whose parameters are reused.
        dim (int): adapter bottleneck d.
        scale (float): adapter output scale.
        dropout (float): dropout inside the adapter.

    Shapes:
        x: (..., in_features) -> (..., out_features)
    """

    def __init__(self, base, dim=8, scale=1.0, dropout=0.1):
        super().__init__(base)
        self.petl_adapter = Adapter(base.out_features, dim, scale, dropout)

    def forward_unmerged(self, x):
        y = F.linear(x, self.weight, self.bias)
        return y + self.petl_adapter(y)

    def extra_flops(self, num_tokens):
        return self.petl_adapter.flops(num_tokens)
