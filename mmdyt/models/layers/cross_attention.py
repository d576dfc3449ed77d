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

    ``out = Proj(MHA(Wq LN_q(q0), Wk LN_k(x), Wv LN_v(x)))`` where ``q0`` is
    the learnable query token and ``x`` every token of every frame: the
    reference DyT code's form (the paper is silent). ``residual=True,
    shared_kv_norm=True`` is mmdyt's earlier form, ``q0 + Proj(MHA(Wq
    LN_q(q0), Wk LN_kv(x), Wv LN_kv(x)))``, which its checkpoints need.

    Args:
        embed_dims (int): C, width of the tokens and the query.
        num_heads (int): attention heads; must divide C.
        qkv_bias (bool): biases in the q / k / v projections.
        residual (bool): add the query token to the attention output.
        shared_kv_norm (bool): one LayerNorm (``norm_kv``) for keys and
            values instead of ``norm_k`` and ``norm_v``.

    Shapes:
        tokens: (B, M, C), M = frames x tokens per frame -> (B, C)
    """

    def __init__(self, embed_dims, num_heads=12, qkv_bias=True, residual=False,
                 shared_kv_norm=False):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'num_heads ({num_heads}) must divide embed_dims ({embed_dims})')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.query = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.residual = residual
        self.shared_kv_norm = shared_kv_norm
        self.norm_q = nn.LayerNorm(embed_dims, eps=1e-6)
        if shared_kv_norm:
            self.norm_kv = nn.LayerNorm(embed_dims, eps=1e-6)
        else:
            self.norm_k = nn.LayerNorm(embed_dims, eps=1e-6)
            self.norm_v = nn.LayerNorm(embed_dims, eps=1e-6)
        self.q = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.kv = nn.Linear(embed_dims, 2 * embed_dims, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        nn.init.trunc_normal_(self.query, std=0.02)

    def _split_heads(self, x):
        """(B, M, C) -> (B, heads, M, C / heads)."""
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def forward(self, tokens):
        """(B, M, C) -> (B, C) output of the query token."""
        if tokens.ndim != 3 or tokens.shape[-1] != self.embed_dims:
            raise ValueError(f'tokens must be (B, M, {self.embed_dims}), '
                             f'got {tuple(tokens.shape)}')
        batch_size = tokens.shape[0]
        q = self.q(self.norm_q(self.query)).expand(batch_size, -1, -1)
        if self.shared_kv_norm:
            k, v = self.kv(self.norm_kv(tokens)).chunk(2, dim=-1)
        else:  # the fused kv weights, each half on its own LayerNorm
            w_k, w_v = self.kv.weight.chunk(2)
            b_k, b_v = self.kv.bias.chunk(2) if self.kv.bias is not None else (None, None)
            k = F.linear(self.norm_k(tokens), w_k, b_k)
            v = F.linear(self.norm_v(tokens), w_v, b_v)
        out = F.scaled_dot_product_attention(
            self._split_heads(q), self._split_heads(k), self._split_heads(v))
        out = self.proj(out.transpose(1, 2).flatten(2))
        if self.residual:
            out = self.query + out
        return out.squeeze(1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Refuse a checkpoint of the other k / v LayerNorm form by name."""
        saved_shared = f'{prefix}norm_kv.weight' in state_dict
        saved_separate = f'{prefix}norm_k.weight' in state_dict
        if (saved_shared and not self.shared_kv_norm) or (saved_separate and self.shared_kv_norm):
            saved, options = (('one LayerNorm shared by k and v (norm_kv), the earlier form',
                               'residual=True, shared_kv_norm=True') if saved_shared else
                              ('separate k / v LayerNorms (norm_k, norm_v)',
                               'shared_kv_norm=False'))
            raise ValueError(f'{prefix.rstrip(".")}: the checkpoint has {saved}; build the '
                             f'cross-attention head with {options}')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def flops(self, num_tokens):
        """Multiply-adds per sample for ``num_tokens`` (M) keys: LayerNorms
        (fvcore convention), q / k / v / output projections and the two
        attention matmuls of the single query."""
        kv_norms = [self.norm_kv] if self.shared_kv_norm else [self.norm_k, self.norm_v]
        norms = layer_norm_flops(self.norm_q, 1) + sum(
            layer_norm_flops(norm, num_tokens) for norm in kv_norms)
        projections = (linear_flops(self.q, 1) + linear_flops(self.proj, 1) +
                       linear_flops(self.kv, num_tokens))
        return norms + projections + attention_matmul_flops(1, num_tokens, self.embed_dims)
