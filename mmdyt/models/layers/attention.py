"""The one multi-head self-attention of mmdyt.

Every block calls it: the ViT block (dense, masked or on packed tokens),
Swin's window attention (:class:`~mmdyt.models.backbones.dyt_swin.WindowAttention`
subclasses it) and the token reductions (ToMe's proportional attention and
merge keys, EViT's class attention). What the module adds to the logits (its
relative position bias) therefore reaches every path by construction; a
caller adds its own additive ``bias`` on top.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..flops import attention_bias_flops, attention_matmul_flops, linear_flops
from .rotary import rotary_flops, rotate


def relative_position_index(grid, table_grid=None):
    """(1 + h * w, 1 + h * w) index into a BEiT-style relative position
    bias table of ``(2H - 1) * (2W - 1) + 3`` rows, built for the
    ``table_grid`` (H, W) (default ``grid``), for a class token followed by an
    (h, w) patch grid (row-major): one row per patch offset, then
    class-to-patch, patch-to-class and class-to-class. Offsets beyond the
    table's (a larger grid) share its outermost rows."""
    h, w = grid
    table_h, table_w = grid if table_grid is None else table_grid
    coords = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w),
                                        indexing='ij')).flatten(1)
    offsets = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    dy = offsets[..., 0].clamp(1 - table_h, table_h - 1)
    dx = offsets[..., 1].clamp(1 - table_w, table_w - 1)
    num_offsets = (2 * table_h - 1) * (2 * table_w - 1)
    index = torch.empty(1 + h * w, 1 + h * w, dtype=torch.long)
    index[1:, 1:] = (dy + table_h - 1) * (2 * table_w - 1) + dx + table_w - 1
    index[0, :] = num_offsets
    index[:, 0] = num_offsets + 1
    index[0, 0] = num_offsets + 2
    return index


class Attention(nn.Module):
    """Multi-head self-attention, optionally with a trainable relative
    position bias added to the logits (BEiT-style, zero-initialised: the
    reference DyT code's segmentation ViT).

    Args:
        embed_dims (int): C.
        num_heads (int): heads.
        qkv_bias (bool): bias of the qkv projection.
        rel_pos_grid (tuple[int, int] | None): (h, w) patch grid the
            relative position bias table is built for (a class token, then
            h * w patches); None = no bias. Inputs of another grid index the
            same table (:func:`relative_position_index`).
        rotary (bool): q and k are rotated by the rotary position tables the
            caller passes (``rope``; EVA-02), counted in :meth:`flops`.

    Shapes:
        x: (..., N, C) -> (..., N, C)
    """

    def __init__(self, embed_dims, num_heads, qkv_bias=True, rel_pos_grid=None, rotary=False):
        super().__init__()
        self.rotary = rotary
        if embed_dims % num_heads:
            raise ValueError(f'num_heads={num_heads} does not divide embed_dims={embed_dims}')
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.rel_pos_grid = None if rel_pos_grid is None else tuple(rel_pos_grid)
        if self.rel_pos_grid is not None:
            h, w = self.rel_pos_grid
            self.rel_pos_table = nn.Parameter(torch.zeros((2 * h - 1) * (2 * w - 1) + 3,
                                                          num_heads))
            self.register_buffer('rel_pos_index', relative_position_index(self.rel_pos_grid),
                                 persistent=False)

    @property
    def head_dims(self):
        """C / heads."""
        return self.proj.in_features // self.num_heads

    def split_heads(self, qkv):
        """(..., N, 3C) projections -> q, k, v, each (..., heads, N, C / heads)."""
        return qkv.unflatten(-1, (3, self.num_heads, -1)).movedim(-3, 0).transpose(-2, -3)

    def merge_heads(self, x):
        """(..., heads, N, C / heads) -> (..., N, C)."""
        return x.transpose(-2, -3).flatten(-2)

    def position_bias(self, num_tokens, positions=None, grid=None):
        """The module's own additive bias (the relative position bias), or
        None without one.

        Args:
            num_tokens (int): N of the full sequence, 1 + h * w.
            positions (Tensor | None): (B, K) positions in the full sequence
                of the tokens that attend (packed or gathered); None = every
                token in order.
            grid (tuple[int, int] | None): (h, w) patch grid of the input;
                None = the table's.

        Returns:
            Tensor | None: (heads, N, N), or (B, heads, K, K) for
            ``positions``.
        """
        if self.rel_pos_grid is None:
            return None
        h, w = self.rel_pos_grid if grid is None else tuple(grid)
        if num_tokens != 1 + h * w:
            raise ValueError(f'the relative position bias needs a class token and the '
                             f'{h}x{w} patch grid ({1 + h * w} tokens), got {num_tokens} '
                             'tokens: pass the grid of the input')
        index = self.rel_pos_index if (h, w) == self.rel_pos_grid else \
            relative_position_index((h, w), self.rel_pos_grid).to(self.rel_pos_index.device)
        if positions is not None:
            index = index[positions[:, :, None], positions[:, None, :]]
        return self.rel_pos_table[index].movedim(-1, -3)

    def attend(self, q, k, v, bias=None, key_mask=None):
        """Scaled dot-product attention of (..., heads, N, d) q, k, v with an
        additive ``bias`` broadcast to (..., heads, N, N).

        ``key_mask`` (B, N) float in [0, 1] (1 = key kept) removes keys from
        the softmax by renormalising the probabilities, which stays
        differentiable with respect to a straight-through mask; a query left
        with no key gets 0.

        Returns:
            Tensor: (..., heads, N, d).
        """
        if key_mask is None:
            return F.scaled_dot_product_attention(
                q, k, v, attn_mask=None if bias is None else bias.to(q.dtype))
        logits = q @ k.transpose(-2, -1) * q.shape[-1]**-0.5
        probs = (logits if bias is None else logits + bias).softmax(-1)
        probs = probs * key_mask[:, None, None, :]
        # a query with no key kept (a sample without active tokens and no
        # class token) gets 0, not 0 / 0
        total = probs.sum(-1, keepdim=True).clamp_min(torch.finfo(probs.dtype).tiny)
        return probs / total @ v

    def rotate_qk(self, q, k, rope, positions=None):
        """q, k (..., heads, N, d) rotated by ``rope`` = (sin, cos) tables of
        the full sequence (:meth:`~mmdyt.models.layers.RotaryEmbedding2d.tables`), taken at the
        tokens' ``positions`` ((B, N); None = the sequence in order)."""
        sin, cos = rope
        if positions is not None:
            sin, cos = sin[positions].unsqueeze(-3), cos[positions].unsqueeze(-3)
        return rotate(q, sin, cos), rotate(k, sin, cos)

    def forward(self, x, key_mask=None, bias=None, grid=None, positions=None, return_qk=False,
                rope=None):
        """Attention among the tokens of ``x`` (..., N, C).

        Args:
            key_mask (Tensor | None): (B, N) float keep weights of the keys
                (:meth:`attend`).
            bias (Tensor | None): additive logits bias broadcast to
                (..., heads, N, N), added to the module's own (e.g. ToMe's
                log token sizes).
            grid (tuple[int, int] | None): the input's patch grid, for the
                relative position bias.
            positions (Tensor | None): (B, N) positions of these tokens in
                the full sequence of ``num_tokens`` when they are a gathered
                subset (capacity mode); None = the full sequence in order.
            return_qk (bool): also return q and k, (..., heads, N, d) (ToMe's
                merge keys, EViT's class attention).
            rope (tuple[Tensor, Tensor] | None): rotary (sin, cos) tables of
                the full sequence, for a ``rotary`` attention.

        Returns:
            Tensor | tuple: (..., N, C), and q, k with ``return_qk``.
        """
        q, k, v = self.split_heads(self.qkv(x))
        if rope is not None:
            q, k = self.rotate_qk(q, k, rope, positions)
        if positions is None:
            own = self.position_bias(x.shape[-2], grid=grid)
        else:
            own = self.position_bias(self.full_length(grid), positions, grid)
        bias = own if bias is None else bias if own is None else own + bias
        out = self.proj(self.merge_heads(self.attend(q, k, v, bias, key_mask)))
        return (out, q, k) if return_qk else out

    def full_length(self, grid=None):
        """N of the full sequence the relative position bias indexes: the
        class token and the ``grid`` (default: the table's) patches."""
        h, w = self.rel_pos_grid if grid is None else tuple(grid)
        return 1 + h * w

    def forward_packed(self, tokens, packed, grid=None, rope=None):
        """Attention among each sample's active tokens only (the relative
        position bias gathered at their positions).

        Args:
            tokens (Tensor): (S, C) active tokens of the whole batch.
            packed (PackedTokens): where they come from.
            grid (tuple[int, int] | None): the input's patch grid.
            rope (tuple[Tensor, Tensor] | None): rotary tables, taken at each
                token's own position.

        Returns:
            Tensor: (S, C)
        """
        q, k, v = self.split_heads(packed.to_padded(self.qkv(tokens)))
        if rope is not None:
            q, k = self.rotate_qk(q, k, rope, packed.positions())
        bias = packed.key_bias(q.dtype)
        if self.rel_pos_grid is not None:
            bias = self.position_bias(packed.num_tokens, packed.positions(), grid) + bias
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(packed.from_padded(self.merge_heads(out)))

    def flops(self, num_tokens, num_keys=None):
        """Multiply-adds for ``num_tokens`` queries attending to ``num_keys``
        keys each (default: each other); the relative position bias adds
        one per logit."""
        num_keys = num_tokens if num_keys is None else num_keys
        total = (linear_flops(self.qkv, num_tokens) + linear_flops(self.proj, num_tokens) +
                 attention_matmul_flops(num_tokens, num_keys, self.proj.in_features))
        if self.rel_pos_grid is not None:
            total = total + attention_bias_flops(num_tokens, num_keys, self.num_heads)
        if self.rotary:
            total = total + rotary_flops(num_tokens, self.proj.in_features)
        return total
