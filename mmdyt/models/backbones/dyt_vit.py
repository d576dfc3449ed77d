"""The one Vision Transformer of mmdyt, with Dynamic Tuning (DyT).

A frozen ViT plus bottleneck adapters and a token dispatcher per block. The
same backbone serves classification (class token), segmentation (feature maps
at ``out_indices``) and video (per-frame token sequences), and the PEFT
baselines (AdaptFormer, LoRA, VPT, linear probe, full and dynamic full tuning).

Two execution paths give identical results in eval mode:

* masked (training, Eq. 5): every token goes through the block and the block
  output is multiplied by the mask M; for attention dispatch the deactivated
  tokens are also removed from the keys of the softmax.
* skipping (inference): deactivated tokens are gathered out of a flat
  ``(B * N, C)`` view with ``index_select``, only the active ones go through
  the block, and the results are added back with ``index_add_``. Attention
  dispatch packs each sample's active tokens to the batch's largest K and
  masks the padding keys.

Both live in :func:`mmdyt.models.layers.dispatched_part`. A forward fills the
:class:`~mmdyt.models.record.ForwardRecord` it is given (masks, token counts,
grid); :meth:`DyTVisionTransformer.flops` counts from it.
"""
import functools
import math
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS

from ..flops import (attention_bias_flops, attention_matmul_flops, conv_patch_flops,
                     layer_norm_flops, linear_flops)
from ..layers import (TokenDispatcher, build_adapter, capacity_tokens, dispatched_part, drop_path,
                      resize_pos_embed)
from ..petl import apply_petl
from ..record import BlockRecord, ForwardRecord
from ..token_reduction import build_token_reduction
from .base import DyTBackbone
from .checkpoint import load_vit_checkpoint, upgrade_legacy_keys

ARCHS = {
    't': dict(embed_dims=192, num_layers=12, num_heads=3, feedforward_channels=768),
    's': dict(embed_dims=384, num_layers=12, num_heads=6, feedforward_channels=1536),
    'b': dict(embed_dims=768, num_layers=12, num_heads=12, feedforward_channels=3072),
    'l': dict(embed_dims=1024, num_layers=24, num_heads=16, feedforward_channels=4096),
}
ARCH_ALIASES = {'tiny': 't', 'small': 's', 'base': 'b', 'large': 'l',
                'deit-tiny': 't', 'deit-small': 's'}
OUT_TYPES = ('cls_token', 'featmap', 'avg_featmap', 'raw')

#: Dispatch variant -> the parts of a block, in order, each
#: ``(name, has_adapter, has_dispatcher)``. 'attn' is the attention
#: sub-layer, 'mlp' the MLP (also AdaptFormer's adapter place), 'layer' both.
DISPATCH_TABLE = {
    'mlp': (('attn', False, False), ('mlp', True, True)),
    'attn': (('attn', True, True), ('mlp', False, False)),
    'attn_mlp': (('attn', True, True), ('mlp', True, True)),
    'layer': (('layer', True, True), ),
    None: (('attn', False, False), ('mlp', True, False)),
}


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


def build_parts(dispatch, embed_dims, adapter_dim, num_experts=1, adapter_scale=1.0,
                adapter_dropout=0.1, num_fixed_tokens=1, tau=5.0):
    """A block's parts of :data:`DISPATCH_TABLE` for ``dispatch``: their names
    (tuple), and ``nn.ModuleDict`` s of their adapters (none when
    ``adapter_dim`` is None) and dispatchers, keyed by part."""
    parts = DISPATCH_TABLE[dispatch]
    adapters = nn.ModuleDict({
        name: build_adapter(embed_dims, adapter_dim, num_experts, adapter_scale,
                            adapter_dropout)
        for name, adapted, _ in parts if adapted
    } if adapter_dim is not None else {})
    dispatchers = nn.ModuleDict({
        name: TokenDispatcher(embed_dims, num_fixed_tokens, tau)
        for name, _, dispatched in parts if dispatched
    })
    return tuple(name for name, _, _ in parts), adapters, dispatchers


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

    Shapes:
        x: (B, N, C) -> (B, N, C)
    """

    def __init__(self, embed_dims, num_heads, qkv_bias=True, rel_pos_grid=None):
        super().__init__()
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

    def _split_heads(self, qkv):
        batch_size, num_tokens, channels = qkv.shape
        return qkv.reshape(batch_size, num_tokens, 3, self.num_heads,
                           channels // (3 * self.num_heads)).permute(2, 0, 3, 1, 4).unbind(0)

    def _merge_heads(self, x):
        return x.transpose(1, 2).flatten(2)

    def position_bias(self, num_tokens, positions=None, grid=None):
        """The relative position bias, or None without one.

        Args:
            num_tokens (int): N of the full sequence, 1 + h * w.
            positions (Tensor | None): (B, K) token positions of packed
                samples; None = every token in order.
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

    def forward(self, x, key_mask=None, grid=None):
        """``key_mask`` (B, N) float in [0, 1] (1 = key kept) removes keys from
        the softmax by renormalising the probabilities, which stays
        differentiable with respect to a straight-through mask; ``grid`` the
        input's patch grid for the relative position bias."""
        q, k, v = self._split_heads(self.qkv(x))
        bias = self.position_bias(x.shape[1], grid=grid)
        if key_mask is None:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            logits = q @ k.transpose(-2, -1) * q.shape[-1]**-0.5
            probs = (logits if bias is None else logits + bias).softmax(-1)
            probs = probs * key_mask[:, None, None, :]
            out = probs / probs.sum(-1, keepdim=True) @ v
        return self.proj(self._merge_heads(out))

    def forward_packed(self, tokens, packed, grid=None):
        """Attention among each sample's active tokens only (the relative
        position bias gathered at their positions).

        Args:
            tokens (Tensor): (S, C) active tokens of the whole batch.
            packed (PackedTokens): where they come from.
            grid (tuple[int, int] | None): the input's patch grid.

        Returns:
            Tensor: (S, C)
        """
        qkv = packed.to_padded(self.qkv(tokens))
        q, k, v = self._split_heads(qkv)
        mask = packed.key_bias(q.dtype)
        if self.rel_pos_grid is not None:
            positions = (packed.flat_index % packed.num_tokens).index_select(0,
                                                                            packed.gather_index)
            mask = self.position_bias(packed.num_tokens, positions.view(packed.batch_size, -1),
                                      grid) + mask
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(packed.from_padded(self._merge_heads(out)))

    def flops(self, num_tokens):
        """Multiply-adds for ``num_tokens`` tokens attending to each other
        (with the relative position bias, its adds to the logits)."""
        total = (linear_flops(self.qkv, num_tokens) + linear_flops(self.proj, num_tokens) +
                 attention_matmul_flops(num_tokens, num_tokens, self.proj.in_features))
        if self.rel_pos_grid is not None:
            total = total + attention_bias_flops(num_tokens, num_tokens, self.num_heads)
        return total


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2. Shapes: (..., C) -> (..., C)."""

    def __init__(self, embed_dims, hidden_dims):
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))

    def flops(self, num_tokens):
        return linear_flops(self.fc1, num_tokens) + linear_flops(self.fc2, num_tokens)


class DyTBlock(nn.Module):
    """A pre-norm transformer block with dynamic tuning: its parts
    (:data:`DISPATCH_TABLE`) each run through
    :func:`~mmdyt.models.layers.dispatched_part`.

    Args:
        embed_dims (int): C.
        num_heads (int): attention heads.
        feedforward_channels (int): MLP hidden width.
        dispatch (str | None): 'mlp', 'attn', 'attn_mlp', 'layer' or None.
        adapter_dim (int | None): adapter bottleneck d; None for no adapter.
        adapter_scale (float): adapter output scale.
        adapter_dropout (float): dropout inside the adapters.
        num_experts (int): adapter experts (1 = plain adapter).
        num_fixed_tokens (int): leading tokens that are always active.
        tau (float): dispatcher temperature.
        drop_path_rate (float): stochastic depth of the block outputs.
        qkv_bias (bool): bias of the qkv projection.
        rel_pos_grid (tuple[int, int] | None): patch grid of a trainable
            relative position bias in the attention; None = none.

    Shapes:
        x: (B, N, C) -> (B, N, C); the masks go to the ``record`` passed.
    """

    #: Part -> (method computing its update, whether it mixes tokens). The
    #: layer part applies stochastic depth inside its update.
    PART_DELTAS = {'attn': ('_attention_delta', True), 'mlp': ('_mlp_delta', False),
                   'layer': ('_layer_delta', True)}

    def __init__(self, embed_dims, num_heads, feedforward_channels, *, dispatch='mlp',
                 adapter_dim=64, adapter_scale=1.0, adapter_dropout=0.1, num_experts=1,
                 num_fixed_tokens=1, tau=5.0, drop_path_rate=0.0, qkv_bias=True,
                 rel_pos_grid=None):
        super().__init__()
        if dispatch not in DISPATCH_TABLE:
            raise ValueError(f'dispatch must be one of {tuple(DISPATCH_TABLE)}, got {dispatch!r}')
        self.dispatch = dispatch
        self.drop_path_rate = drop_path_rate
        self.norm1 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.attn = Attention(embed_dims, num_heads, qkv_bias, rel_pos_grid)
        self.norm2 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mlp = Mlp(embed_dims, feedforward_channels)
        self.parts, self.adapters, self.dispatchers = build_parts(
            dispatch, embed_dims, adapter_dim, num_experts, adapter_scale, adapter_dropout,
            num_fixed_tokens, tau)

    def forward(self, x, skip_inactive=False, record=None, reduction=None, capacity=None,
                grid=None):
        """(B, N, C) -> (B, N', C); each dispatched part's (B, N) mask goes to
        ``record.masks`` (a :class:`BlockRecord`) when given, with the
        capacity mode's counts (``capacity``, with ``skip_inactive``). ``reduction``
        (a token reduction's :class:`~mmdyt.models.token_reduction.BlockHook`)
        may shorten the sequence before the block and after each part.
        ``grid``: the input's patch grid, for a relative position bias."""
        x = x if reduction is None else reduction.enter(x)
        for part in self.parts:
            delta, pack = self.PART_DELTAS[part]
            delta, stats = getattr(self, delta), {}
            if grid is not None and part != 'mlp':
                delta = functools.partial(delta, grid=grid)
            x, mask = dispatched_part(
                x, delta if reduction is None else reduction.delta(part, delta),
                self.dispatchers[part] if part in self.dispatchers else None,
                self.adapters[part] if part in self.adapters else None,
                skip_inactive=skip_inactive, pack=pack, training=self.training,
                drop_path_rate=0.0 if part == 'layer' else self.drop_path_rate,
                capacity=capacity, capacity_stats=stats)
            if record is not None and mask is not None:
                record.masks[part] = mask
                if stats:
                    record.capacity[part], record.overflow[part] = stats['tokens'], \
                        stats['overflow']
            x = x if reduction is None else reduction.after(part, x)
        return x

    def _attention_delta(self, tokens, key_mask=None, packed=None, grid=None):
        if packed is not None:
            return self.attn.forward_packed(self.norm1(tokens), packed, grid)
        return self.attn(self.norm1(tokens), key_mask=key_mask, grid=grid)

    def _mlp_delta(self, tokens, key_mask=None, packed=None):
        return self.mlp(self.norm2(tokens))

    def _layer_delta(self, tokens, key_mask=None, packed=None, grid=None):
        """The whole layer's update; the masked path (``key_mask`` given)
        applies stochastic depth to each sub-layer, as the dense block does."""
        if key_mask is not None:
            y = tokens + drop_path(self.attn(self.norm1(tokens), key_mask=key_mask, grid=grid),
                                   self.drop_path_rate, self.training)
            y = y + drop_path(self.mlp(self.norm2(y)), self.drop_path_rate, self.training)
            return y - tokens
        attn = self._attention_delta(tokens, packed=packed, grid=grid)
        return attn + self.mlp(self.norm2(tokens + attn))

    def flops(self, record):
        """Per-sample multiply-adds of the forward ``record`` (a
        :class:`BlockRecord`) describes, counting only the tokens the skipping
        path computes: (b,) tensor, or int when nothing is dispatched.
        LayerNorms, attention matmuls, adapters, gates and PETL layers
        included."""
        attn_tokens = record.computed_tokens('attn')
        mlp_tokens = record.computed_tokens('mlp')
        total = (layer_norm_flops(self.norm1, attn_tokens) + self.attn.flops(attn_tokens) +
                 layer_norm_flops(self.norm2, mlp_tokens) + self.mlp.flops(mlp_tokens))
        for part, module in (*self.adapters.items(), *self.dispatchers.items()):
            total = total + module.flops(record.tokens(part))
        return total


def pad_to_patches(x, patch_size):
    """(B, C, H, W) zero-padded at the bottom and right to multiples of
    ``patch_size`` (mmcv's ``AdaptivePadding(padding='corner')``, which
    mmpretrain's ``PatchEmbed`` uses), instead of the patch convolution's
    silent crop of the last rows and columns."""
    pad_h, pad_w = -x.shape[-2] % patch_size, -x.shape[-1] % patch_size
    return F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x


def check_settings(arch_settings, out_indices, drop_path_rate):
    """Refuse, at build time, what would otherwise fail at the first forward
    or silently change the model; returns ``out_indices`` as a list of
    block indices in [0, num_layers).

    Raises:
        ValueError: ``num_heads`` does not divide ``embed_dims``; an
            out index outside [-num_layers, num_layers) or given twice (e.g.
            ``-1`` and the last block); ``drop_path_rate`` outside [0, 1).
    """
    embed_dims, num_heads = arch_settings['embed_dims'], arch_settings['num_heads']
    num_layers = arch_settings['num_layers']
    if embed_dims % num_heads:
        raise ValueError(f'num_heads={num_heads} does not divide embed_dims={embed_dims}')
    if not 0 <= drop_path_rate < 1:
        raise ValueError(f'drop_path_rate must be in [0, 1), got {drop_path_rate} (1 drops '
                         'every block: NaN outputs)')
    indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
    outside = [i for i in indices if not -num_layers <= i < num_layers]
    if outside:
        raise ValueError(f'out_indices {outside} outside [-{num_layers}, {num_layers}) for '
                         f'{num_layers} blocks')
    normalized = [i % num_layers for i in indices]
    if len(set(normalized)) != len(normalized):
        raise ValueError(f'out_indices {indices} name a block twice (blocks {normalized})')
    return normalized


def _per_row(value, rows, batch_size):
    """A per-sample count (int or (b,)) of ``rows`` (None = all) -> (B,)
    float64 on the CPU, 0 for the other rows."""
    value = torch.as_tensor(value, dtype=torch.float64)
    if rows is None:
        return value.expand(batch_size).clone()
    out = torch.zeros(batch_size, dtype=torch.float64)
    return out.index_copy_(0, rows.cpu(), value.expand(rows.shape[0]).clone())


@MODELS.register_module()
class DyTVisionTransformer(DyTBackbone):
    """Vision Transformer with Dynamic Tuning and the PEFT baselines.

    Args:
        arch (str | dict): 't', 's', 'b', 'l' (or 'tiny', 'small', 'base',
            'large') or a dict with ``embed_dims``, ``num_layers``,
            ``num_heads``, ``feedforward_channels``.
        img_size (int | tuple): input size the position embedding is built for;
            other sizes are interpolated at run time.
        patch_size (int): patch size.
        in_channels (int): image channels.
        dispatch (str | None): DyT variant: 'mlp' (default), 'attn',
            'attn_mlp', 'layer', or None (no dispatch: AdaptFormer when
            ``adapter_dim`` is set, a plain ViT otherwise).
        adapter_dim (int | None): adapter bottleneck d; None for no adapter.
        adapter_scale (float): adapter output scale.
        adapter_dropout (float): dropout inside the adapters.
        num_experts (int): experts per adapter; 1 = plain adapter, > 1 =
            MoE-adapter.
        tau (float): initial dispatcher temperature.
        lora_rank (int): deprecated, use ``petl=dict(type='lora', rank=r,
            alpha=a, targets=['qkv'])``; 0 = no LoRA.
        lora_alpha (float): deprecated with ``lora_rank``.
        num_prompts (int): VPT-deep prompt tokens per layer; 0 = no VPT.
        freeze_pretrained (bool): freeze the ViT weights (PEFT). False trains
            everything, i.e. full tuning or dynamic full tuning.
        out_type (str): 'cls_token' (B, C), 'featmap' (B, C, H, W),
            'avg_featmap' (B, C) or 'raw' (B, N, C) patch tokens.
        out_indices (int | Sequence[int]): blocks whose output is returned.
        final_norm (bool): LayerNorm after the last block.
        drop_path_rate (float): stochastic depth, linearly increasing.
        skip_inactive (bool): in eval mode, really skip deactivated tokens
            (True) or run the masked path (False, for checking).
        capacity (float | None): in (0, 1]: with ``skip_inactive``, capacity
            mode (static shapes, for compiled or accelerator inference): each
            dispatcher computes ``ceil(capacity * N)`` tokens per sample, those
            of highest gate logit, the mask zeroing the inactive ones; equal
            to skipping while no sample has more active tokens. The record
            counts the active tokens left out (``overflow_share``).
        capacity_warning (float): warn when a forward leaves out more than
            this share of the active tokens in capacity mode.
        pretrained (str | None): ViT checkpoint (mmpretrain, timm or original
            ``.npz``) loaded by :meth:`init_weights`.
        init_cfg (dict | list | None): mmengine's; a
            ``dict(type='Pretrained', checkpoint=..., prefix=...)`` entry is
            taken as ``pretrained`` (same key mapping and checks).
        rel_pos_bias (bool): a zero-initialised trainable relative position
            bias per block (BEiT-style, built for the ``img_size`` patch grid
            and indexed by the input's grid, :func:`relative_position_index`;
            the reference DyT code's segmentation ViT), trainable under
            ``freeze_pretrained`` and counted in :meth:`flops`.
        token_reduction (dict | None): ToMe, EViT or DynamicViT
            (:mod:`mmdyt.models.token_reduction`), e.g. ``dict(type='tome',
            r=8)``, ``dict(type='evit', keep_rate=0.7)`` or
            ``dict(type='dynamicvit', keep_ratio=0.7)``; needs dispatch None
            or 'mlp' and ``out_type='cls_token'``.
        petl (dict | list[dict] | None): PETL layers patched in by
            :func:`mmdyt.models.petl.apply_petl`, e.g.
            ``dict(type='lora', rank=8, alpha=8, targets=['qkv'])``,
            ``dict(type='rep_adapter', dim=8)`` or ``dict(type='houlsby')``.

    Stepping API (what :meth:`forward` does, for callers that stop early or
    drop samples on the way, like early exits): :meth:`embed`, then
    :meth:`run_blocks` over any ranges of blocks (the final norm follows the
    last block), then :meth:`format_output`. Each step fills the
    :class:`~mmdyt.models.record.ForwardRecord` it is given; :meth:`flops`
    reads it.
    """

    #: The PEFT keys plus the token reduction's own modules (DynamicViT's
    #: predictors) and the relative position biases, trainable on a frozen
    #: backbone.
    TUNING_KEYS = DyTBackbone.TUNING_KEYS + ('token_reduction.', 'rel_pos_table')

    def __init__(self, arch='b', img_size=224, patch_size=16, in_channels=3,
                 dispatch='mlp', adapter_dim=64, adapter_scale=1.0,
                 adapter_dropout=0.1, num_experts=1, tau=5.0, lora_rank=0,
                 lora_alpha=8.0, num_prompts=0, freeze_pretrained=True,
                 out_type='cls_token', out_indices=-1, final_norm=True,
                 drop_path_rate=0.0, skip_inactive=True, qkv_bias=True,
                 pretrained=None, petl=None, token_reduction=None, capacity=None,
                 capacity_warning=0.01, rel_pos_bias=False, init_cfg=None):
        super().__init__(pretrained, freeze_pretrained, init_cfg)
        self.arch_settings = self._parse_arch(arch)
        self.check_choices(dispatch, DISPATCH_TABLE, out_type, OUT_TYPES, adapter_dim)
        if num_prompts < 0 or lora_rank < 0:
            raise ValueError('num_prompts and lora_rank must be >= 0')
        if rel_pos_bias and num_prompts:
            raise ValueError('rel_pos_bias is built for a class token and the patches: '
                             'it cannot be combined with num_prompts')
        embed_dims = self.arch_settings['embed_dims']
        num_layers = self.arch_settings['num_layers']
        self.embed_dims = embed_dims
        self.num_layers = num_layers
        self.patch_size = patch_size
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.patch_resolution = tuple(s // patch_size for s in self.img_size)
        self.dispatch = dispatch
        self.num_prompts = num_prompts
        self.num_fixed_tokens = 1 + num_prompts
        self.out_type = out_type
        self.final_norm = final_norm
        self.skip_inactive = skip_inactive
        if capacity is not None:
            capacity_tokens(capacity, 1)  # checks the range
        self.capacity, self.capacity_warning = capacity, capacity_warning
        self.out_indices = check_settings(self.arch_settings, out_indices, drop_path_rate)

        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_channels, embed_dims, patch_size, patch_size)
        num_patches = self.patch_resolution[0] * self.patch_resolution[1]
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + num_patches, embed_dims))
        rates = torch.linspace(0, drop_path_rate, num_layers).tolist()
        self.blocks = nn.ModuleList([
            DyTBlock(embed_dims, self.arch_settings['num_heads'],
                     self.arch_settings['feedforward_channels'], dispatch=dispatch,
                     adapter_dim=adapter_dim, adapter_scale=adapter_scale,
                     adapter_dropout=adapter_dropout, num_experts=num_experts,
                     num_fixed_tokens=self.num_fixed_tokens, tau=tau,
                     drop_path_rate=rates[i], qkv_bias=qkv_bias,
                     rel_pos_grid=self.patch_resolution if rel_pos_bias else None)
            for i in range(num_layers)
        ])
        self.norm = nn.LayerNorm(embed_dims, eps=1e-6) if final_norm else nn.Identity()
        if num_prompts:
            bound = math.sqrt(6.0 / (3 * patch_size**2 + embed_dims))
            self.prompts = nn.Parameter(
                torch.empty(num_layers, num_prompts, embed_dims).uniform_(-bound, bound))
        self._init_vit_weights()
        petl = self._with_deprecated_lora(petl, lora_rank, lora_alpha)
        if petl:
            apply_petl(self, petl)
        self.token_reduction = build_token_reduction(token_reduction, self)
        self._set_trainable()

    @staticmethod
    def _parse_arch(arch):
        if isinstance(arch, str):
            key = ARCH_ALIASES.get(arch.lower(), arch.lower())
            if key not in ARCHS:
                raise ValueError(f'arch must be one of {sorted(ARCHS)} or a dict, got {arch!r}')
            return dict(ARCHS[key])
        required = {'embed_dims', 'num_layers', 'num_heads', 'feedforward_channels'}
        if not isinstance(arch, dict) or not required <= set(arch):
            raise ValueError(f'a custom arch must be a dict with keys {sorted(required)}, '
                             f'got {arch!r}')
        return dict(arch)

    @staticmethod
    def _with_deprecated_lora(petl, lora_rank, lora_alpha):
        """``petl`` as a list, with the deprecated ``lora_rank`` turned into
        its ``petl`` entry."""
        petl = [] if petl is None else list(petl) if isinstance(petl, (list, tuple)) else [petl]
        if lora_rank:
            warnings.warn("DyTVisionTransformer(lora_rank=...) is deprecated and will be "
                          "removed in the next release: use petl=dict(type='lora', "
                          f"rank={lora_rank}, alpha={lora_alpha}, targets=['qkv'])",
                          DeprecationWarning, stacklevel=3)
            petl.insert(0, dict(type='lora', rank=lora_rank, alpha=lora_alpha))
        return petl

    def _init_vit_weights(self):
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.init_block_linears()

    def upgrade_state_dict(self, state_dict):
        """Rename the keys of checkpoints written by earlier releases
        (``upgrade_legacy_keys``)."""
        upgrade_legacy_keys(state_dict)

    def load_pretrained(self, checkpoint):
        """Load a ViT checkpoint (mmpretrain, timm or original ``.npz``),
        the keys under ``pretrained_prefix`` when one is set."""
        load_vit_checkpoint(self, checkpoint, self.pretrained_prefix)


    # ---- FLOPs of a forward -------------------------------------------------
    def flops_by_part(self, record, stop=None):
        """Per-sample multiply-adds of the forward ``record`` describes, by
        part, counting only the tokens the skipping path computes (fvcore
        convention; attention matmuls and LayerNorms counted).

        Args:
            record (ForwardRecord): filled by this backbone's forward.
            stop (int | None): count only blocks before it (and the final
                norm only when it is the number of blocks).

        Returns:
            dict[str, Tensor]: ``patch_embed``, ``block{i}`` for the blocks
            that ran and ``norm`` -> (B,) float64, 0 for samples that did not
            run that part.
        """
        batch_size = record.batch_size
        parts = {'patch_embed': _per_row(
            conv_patch_flops(self.patch_embed.proj, record.num_patches), None, batch_size)}
        stop = self.num_layers if stop is None else stop
        for block_record in record.blocks:
            if block_record.index < stop:
                block = self.blocks[block_record.index]
                flops = block.flops(block_record)
                if self.token_reduction is not None:
                    flops = flops + self.token_reduction.flops(block, block_record)
                parts[f'block{block_record.index}'] = _per_row(flops, block_record.rows,
                                                                batch_size)
        last = record.blocks[-1] if record.blocks else None
        if self.final_norm and stop == self.num_layers and last is not None \
                and last.index == self.num_layers - 1:
            parts['norm'] = _per_row(layer_norm_flops(self.norm, last.tokens('mlp')), last.rows,
                                     batch_size)
        return parts

    # ---- forward ----------------------------------------------------------
    def embed(self, x, record=None):
        """(B, 3, H, W) -> tokens (B, 1 + h * w, C), ``h = ceil(H / patch)``
        (:func:`pad_to_patches`); ``record`` gets the batch size, the patch
        grid and the dispatcher layout."""
        x = self.patch_embed.proj(pad_to_patches(x, self.patch_size))
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)
        pos_embed = resize_pos_embed(self.pos_embed, self.patch_resolution, grid)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)
        if record is not None:
            record.batch_size = x.shape[0]
            record.num_tokens = x.shape[1] + self.num_prompts
            record.num_fixed_tokens = self.num_fixed_tokens
            record.grid = grid
            record.dispatcher_names = self.dispatcher_names()
        return x + pos_embed

    def run_blocks(self, x, record=None, start=0, stop=None, rows=None):
        """Blocks ``start`` to ``stop - 1`` (VPT prompts put in first), and
        the final norm when the last block is among them.

        Args:
            x (Tensor): (b, N, C) tokens entering block ``start``
                (:meth:`embed`'s output for ``start=0``).
            record (ForwardRecord | None): gets a :class:`BlockRecord` per
                block.
            start, stop (int): block range; ``stop`` None = to the end.
            rows (Tensor | None): (b,) rows of the embedded batch that ``x``
                holds, when samples left on the way; None = all.

        Returns:
            Tensor: (b, N, C).
        """
        stop = self.num_layers if stop is None else stop
        skip = self.skip_inactive and not self.training
        record = ForwardRecord() if record is None else record
        for i in range(start, stop):
            if self.num_prompts:
                prompts = self.prompts[i].expand(x.shape[0], -1, -1)
                x = torch.cat([x[:, :1], prompts, x[:, self.num_fixed_tokens if i else 1:]], 1)
            block_record = BlockRecord(index=i, num_tokens=x.shape[1], rows=rows)
            hook = None if self.token_reduction is None else self.token_reduction.block_hook(
                self.blocks[i], block_record, record.blocks[-1] if record.blocks else None)
            x = self.blocks[i](x, skip_inactive=skip, record=block_record, reduction=hook,
                               capacity=self.capacity if skip else None,
                               grid=record.grid if any(record.grid) else None)
            record.blocks.append(block_record)
            if i == self.num_layers - 1:
                x = self.norm(x)
        return x

    def forward(self, x, record=None):
        """(B, 3, H, W) -> tuple of outputs, one per ``out_indices``; what
        happened goes to ``record`` (a :class:`ForwardRecord`) when given."""
        self.warn_if_unrecorded(record)
        record = ForwardRecord() if record is None else record
        x = self.embed(x, record)
        outs = []
        for i in range(self.num_layers):
            x = self.run_blocks(x, record, i, i + 1)
            if i in self.out_indices:
                outs.append(self.format_output(x, record.grid))
        self.warn_on_overflow(record)
        return tuple(outs)

    def warn_on_overflow(self, record):
        """In capacity mode, warn when the forward ``record`` describes left
        out more than ``capacity_warning`` of the active tokens."""
        if self.capacity is None or torch.compiler.is_compiling() or torch.jit.is_tracing():
            return
        share = record.overflow_share()
        if share > self.capacity_warning:
            warnings.warn(f'capacity mode (capacity={self.capacity}) left out '
                          f'{share:.1%} of the active tokens (warning above '
                          f'{self.capacity_warning:.1%}): raise the capacity')

    def format_output(self, x, grid):
        """(B, N, C) tokens -> the ``out_type`` output."""
        patches = x[:, self.num_fixed_tokens:]
        if self.out_type == 'cls_token':
            return x[:, 0]
        if self.out_type == 'raw':
            return patches
        if self.out_type == 'avg_featmap':
            return patches.mean(1)
        return patches.transpose(1, 2).reshape(x.shape[0], x.shape[-1], *grid)
