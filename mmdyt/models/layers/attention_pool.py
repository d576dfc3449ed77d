"""Multi-head attention pooling with a learned latent query (MAP, SigLIP's
pooling head), with timm's ``AttentionPoolLatent`` names so that its
checkpoints load unchanged."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..flops import attention_matmul_flops, layer_norm_flops, linear_flops
from .mlp import Mlp


class AttentionPool(nn.Module):
    """One latent query attends to every token, then a pre-norm MLP with a
    residual.

    Args:
        embed_dims (int): C.
        num_heads (int): heads.
        hidden_dims (int): MLP width.
        act_layer (type): MLP activation.
        norm_eps (float): LayerNorm epsilon.

    Shapes:
        x: (B, N, C) -> (B, C)
    """

    def __init__(self, embed_dims, num_heads, hidden_dims, act_layer=nn.GELU, norm_eps=1e-6):
        super().__init__()
        self.num_heads = num_heads
        self.latent = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.q = nn.Linear(embed_dims, embed_dims)
        self.kv = nn.Linear(embed_dims, 2 * embed_dims)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.mlp = Mlp(embed_dims, hidden_dims, act_layer)
        nn.init.trunc_normal_(self.latent, std=embed_dims**-0.5)

    def forward(self, x):
        batch_size = x.shape[0]
        q = self.q(self.latent).expand(batch_size, -1, -1)
        q = q.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)
        k, v = self.kv(x).unflatten(-1, (2, self.num_heads, -1)).movedim(-3, 0).transpose(-2, -3)
        out = self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2))
        return (out + self.mlp(self.norm(out)))[:, 0]

    def flops(self, num_tokens):
        """Multiply-adds per sample over ``num_tokens`` tokens."""
        return (linear_flops(self.q, 1) + linear_flops(self.kv, num_tokens) +
                attention_matmul_flops(1, num_tokens, self.proj.in_features) +
                linear_flops(self.proj, 1) + layer_norm_flops(self.norm, 1) + self.mlp.flops(1))
