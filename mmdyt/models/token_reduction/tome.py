"""Token Merging (ToMe, Bolya et al., ICLR 2023): in every block, between
attention and MLP, bipartite soft matching on the attention keys merges
``r`` tokens (class token protected) by size-weighted averaging; the token
sizes give proportional attention (log size added to the logits) in the
blocks that follow. The sequence really gets shorter, in training and
inference alike."""
import math

import torch

from ..flops import attention_matmul_flops
from .base import BlockHook, TokenReduction


def bipartite_soft_matching(metric, r):
    """ToMe's matching: tokens alternate between sets A (even) and B (odd);
    each A token's most similar B token (cosine of ``metric``) is its edge,
    the ``r`` best edges are merged. The class token (index 0, in A) is
    never merged.

    Args:
        metric (Tensor): (B, N, d) keys averaged over heads.
        r (int): tokens to remove, at most ``(N - 1) // 2``.

    Returns:
        callable: ``merge(x)`` (B, N, D) -> (B, N - r, D), summing each
        merged A token into its B token (unmerged A tokens first, in order,
        then B).
    """
    num_tokens = metric.shape[1]
    if not 0 <= r <= (num_tokens - 1) // 2:
        raise ValueError(f'token_reduction r={r} is too large for a sequence of {num_tokens} '
                         f'tokens: at most {(num_tokens - 1) // 2} can merge')
    with torch.no_grad():
        metric = metric / metric.norm(dim=-1, keepdim=True)
        scores = metric[:, ::2] @ metric[:, 1::2].transpose(-1, -2)
        scores[:, 0] = -math.inf
        best, dst_of = scores.max(-1)
        order = best.argsort(-1, descending=True)
        src_index = order[:, :r]
        kept_index = order[:, r:].sort(-1).values
        dst_index = dst_of.gather(1, src_index)

    def merge(x):
        src, dst = x[:, ::2], x[:, 1::2]
        dims = x.shape[-1]
        kept = src.gather(1, kept_index[..., None].expand(-1, -1, dims))
        moved = src.gather(1, src_index[..., None].expand(-1, -1, dims))
        dst = dst.scatter_reduce(1, dst_index[..., None].expand(-1, -1, dims), moved, 'sum')
        return torch.cat([kept, dst], 1)

    return merge


def merge_tokens(x, sizes, metric, r):
    """Merge ``r`` tokens of ``x`` by size-weighted averaging.

    Args:
        x (Tensor): (B, N, C) tokens.
        sizes (Tensor | None): (B, N) patches each token stands for (None =
            ones).
        metric (Tensor): (B, N, d) matching features.
        r (int): tokens to remove.

    Returns:
        tuple: (B, N - r, C) tokens and their (B, N - r) sizes; the
        size-weighted sum of the tokens is unchanged.
    """
    sizes = x.new_ones(x.shape[:2]) if sizes is None else sizes
    merge = bipartite_soft_matching(metric, r)
    merged_sizes = merge(sizes[..., None])
    return merge(x * sizes[..., None]) / merged_sizes, merged_sizes[..., 0]


class ToMeHook(BlockHook):
    """Proportional attention that keeps the keys, then the merge."""

    CARRIED = ('sizes', )

    def __init__(self, tome, block, record, previous):
        super().__init__(block, record, previous)
        self.r = tome.r[record.index]
        self.prop_attn = tome.prop_attn
        self.metric = None

    def delta(self, part, delta):
        if part != 'attn' or (self.r == 0 and 'sizes' not in self.carry):
            return delta

        def tome_attention(tokens, key_mask=None, packed=None, positions=None):
            sizes = self.carry.get('sizes')
            bias = sizes.log()[:, None, None, :] if self.prop_attn and sizes is not None \
                else None
            out, _, keys = self.block.attn(self.block.norm1(tokens), bias=bias, return_qk=True)
            self.metric = keys.mean(1)
            return out

        return tome_attention

    def after(self, part, x):
        if part != 'attn' or self.r == 0:
            return x
        x, self.carry['sizes'] = merge_tokens(x, self.carry.get('sizes'), self.metric, self.r)
        self.record.part_tokens['mlp'] = x.shape[1]
        return x


class ToMe(TokenReduction):
    """Token merging in every block.

    Args:
        num_layers (int): blocks of the backbone.
        r (int | Sequence[int]): tokens merged per block: one value for
            every block (ToMe's constant schedule) or one per block.
        prop_attn (bool): proportional attention.
    """

    HOOK = ToMeHook

    def __init__(self, num_layers, r=8, prop_attn=True):
        super().__init__()
        r = [r] * num_layers if isinstance(r, int) else list(r)
        if len(r) != num_layers or any(not isinstance(v, int) or v < 0 for v in r):
            raise ValueError(f'tome: r must be an int >= 0 or {num_layers} of them (one per '
                             f'block), got {r}')
        self.r = r
        self.prop_attn = prop_attn

    def flops(self, block, record):
        """The matching: (ceil(N/2) x floor(N/2)) cosine scores of the
        (C / heads)-wide keys, one product like ``q @ k^T`` (half of
        :func:`attention_matmul_flops`)."""
        if self.r[record.index] == 0:
            return 0
        n = record.num_tokens
        return attention_matmul_flops(n - n // 2, n // 2, block.attn.head_dims) // 2
