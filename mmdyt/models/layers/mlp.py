"""The feed-forward part of a transformer block and its activations."""
import functools

import torch
import torch.nn as nn

from ..flops import elementwise_flops, layer_norm_flops, linear_flops


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``, the GELU approximation of OpenAI's CLIP."""

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


#: Activation names of the configs -> module classes: 'gelu' (exact, the
#: supervised ViT, DINOv2, OpenCLIP), 'quick_gelu' (OpenAI CLIP), 'gelu_tanh'
#: (tanh approximation, big_vision's SigLIP).
ACTIVATIONS = {'gelu': nn.GELU, 'quick_gelu': QuickGELU,
               'gelu_tanh': functools.partial(nn.GELU, approximate='tanh')}


def activation_layer(name):
    """The module class of activation ``name`` (:data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f'act must be one of {sorted(ACTIVATIONS)}, got {name!r}')
    return ACTIVATIONS[name]


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


class SwiGLU(nn.Module):
    """``fc2(norm(silu(fc1_g(x)) * fc1_x(x)))`` (EVA-02; timm's names), the
    optional LayerNorm of the hidden features its sub-LN.

    Args:
        embed_dims (int): C.
        hidden_dims (int): hidden width of each branch.
        norm_eps (float | None): epsilon of the hidden LayerNorm; None = no
            LayerNorm.

    Shapes:
        x: (..., C) -> (..., C)
    """

    def __init__(self, embed_dims, hidden_dims, norm_eps=None):
        super().__init__()
        self.fc1_g = nn.Linear(embed_dims, hidden_dims)
        self.fc1_x = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.SiLU()
        self.norm = nn.Identity() if norm_eps is None else nn.LayerNorm(hidden_dims, eps=norm_eps)
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def forward(self, x):
        return self.fc2(self.norm(self.act(self.fc1_g(x)) * self.fc1_x(x)))

    def flops(self, num_tokens):
        """Multiply-adds on ``num_tokens`` tokens: three linears, the gating
        product and the hidden LayerNorm."""
        hidden = self.fc2.in_features
        return (linear_flops(self.fc1_g, num_tokens) + linear_flops(self.fc1_x, num_tokens) +
                elementwise_flops(num_tokens, hidden) + layer_norm_flops(self.norm, num_tokens) +
                linear_flops(self.fc2, num_tokens))
