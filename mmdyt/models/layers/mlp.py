"""The feed-forward part of a transformer block."""
import torch.nn as nn

from ..flops import linear_flops


class Mlp(nn.Module):
    """fc1 -> activation -> fc2.

    Args:
        embed_dims (int): C.
        hidden_dims (int): hidden width.
        act_layer (type): activation module class (GELU by default).

    Shapes:
        x: (..., C) -> (..., C)
    """

    def __init__(self, embed_dims, hidden_dims, act_layer=nn.GELU):
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))

    def flops(self, num_tokens):
        """Multiply-adds on ``num_tokens`` tokens (activations are free)."""
        return linear_flops(self.fc1, num_tokens) + linear_flops(self.fc2, num_tokens)
