"""Houlsby-style sequential adapter after a projection (Houlsby et al., 2019)."""
import torch.nn as nn
import torch.nn.functional as F

from ..layers import Adapter


class SequentialAdapterLinear(nn.Linear):
    """``y = W0 x + b0; y + adapter(y)``: an ``nn.Linear`` (the pretrained
    ``attn.proj`` or ``mlp.fc2``, same parameter names, so checkpoints load
    unchanged) followed by a bottleneck :class:`~mmdyt.models.layers.Adapter`
    with its own skip connection, before the block's residual sum.

    Args:
        base (nn.Linear): the pretrained layer whose parameters are reused.
        dim (int): adapter bottleneck d.
        scale (float): adapter output scale.
        dropout (float): dropout inside the adapter.

    Shapes:
        x: (..., in_features) -> (..., out_features)
    """

    def __init__(self, base, dim=8, scale=1.0, dropout=0.1):
        if type(base) is not nn.Linear:
            raise ValueError(f'the sequential adapter wraps a plain nn.Linear, '
                             f'got {type(base).__name__}')
        super().__init__(base.in_features, base.out_features, base.bias is not None)
        self.weight = base.weight
        self.bias = base.bias
        self.petl_adapter = Adapter(base.out_features, dim, scale, dropout)

    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)
        return y + self.petl_adapter(y)

    def flops(self, num_tokens):
        """Multiply-adds of the adapter alone."""
        return self.petl_adapter.flops(num_tokens)
