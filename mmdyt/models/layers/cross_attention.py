"""Cross-attention with one learnable query token (the video head's
temporal aggregation, DyT Sec. 4.5 / App. A.2, after EVL and AIM).

Toolbox-neutral: plain PyTorch, no mmaction import.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..flops import attention_matmul_flops, layer_norm_flops, linear_flops


class CrossAttentionQuery(nn.Module):
    """A learnable query token attends to a set of tokens.

    ``out = q0 + Proj(MHA(Wq LN_q(q0), Wk LN_kv(x), Wv LN_kv(x)))`` where
    ``q0`` is the learnable query token and ``x`` every token of every frame.

    Args:
        embed_dims (int): C, width of the tokens and the query.
        num_heads (int): attention heads; must divide C.
        qkv_bias (bool): biases in the q / k / v projections.

    Shapes:
        tokens: (B, M, C), M = frames x tokens per frame -> (B, C)
    """

    def __init__(self, embed_dims, num_heads=12, qkv_bias=True):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'num_heads ({num_heads}) must divide embed_dims ({embed_dims})')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.query = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.norm_q = nn.LayerNorm(embed_dims, eps=1e-6)
        self.norm_kv = nn.LayerNorm(embed_dims, eps=1e-6)
        self.q = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.kv = nn.Linear(embed_dims, 2 * embed_dims, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        nn.init.trunc_normal_(self.query, std=0.02)

    def _split_heads(self, x):
        """(B, M, C) -> (B, heads, M, C / heads)."""
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def forward(self, tokens):
        """(B, M, C) -> (B, C) updated query token."""
        if tokens.ndim != 3 or tokens.shape[-1] != self.embed_dims:
            raise ValueError(f'tokens must be (B, M, {self.embed_dims}), '
                             f'got {tuple(tokens.shape)}')
        batch_size = tokens.shape[0]
        q = self.q(self.norm_q(self.query)).expand(batch_size, -1, -1)
        k, v = self.kv(self.norm_kv(tokens)).chunk(2, dim=-1)
        out = F.scaled_dot_product_attention(
            self._split_heads(q), self._split_heads(k), self._split_heads(v))
        out = self.proj(out.transpose(1, 2).flatten(2))
        return (self.query + out).squeeze(1)

    def flops(self, num_tokens):
        """Multiply-adds per sample for ``num_tokens`` (M) keys: LayerNorms
        (fvcore convention), q / k / v / output projections and the two
        attention matmuls of the single query."""
        norms = layer_norm_flops(self.norm_q, 1) + layer_norm_flops(self.norm_kv, num_tokens)
        projections = (linear_flops(self.q, 1) + linear_flops(self.proj, 1) +
                       linear_flops(self.kv, num_tokens))
        return norms + projections + attention_matmul_flops(1, num_tokens, self.embed_dims)
