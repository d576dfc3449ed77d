"""Swin Transformer with Dynamic Tuning (DyT paper App. A.4, Table 11).

The hierarchical backbone of mmpretrain's ``SwinTransformer`` (same module
names where a checkpoint stores them, mmcv's patch embedding and patch
merging unchanged) with an adapter and a token dispatcher beside the MLP of
every shifted-window block:

* the window attention runs on every token of the (H, W) map (windows need
  the whole map);
* the MLP part is one :func:`~mmdyt.models.layers.dispatched_part` on the
  flattened (B, H * W, C) tokens: masked in training, really skipped in
  evaluation (``index_select`` / ``index_add_`` on the (B * H * W, C) view);
  a skipped token bypasses the MLP and gets the adapter.

``dispatch=None`` with ``adapter_dim`` is AdaptFormer, without it the plain
Swin (linear probe; full tuning with ``freeze_pretrained=False``); LoRA and
the other PETL layers come through ``petl=`` as for the ViT. The forward fills
the :class:`~mmdyt.models.record.ForwardRecord` it is given (one
:class:`BlockRecord` per block, indexed across stages); :meth:`flops_by_part`
counts from it, window attention included.
"""
import functools

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import PatchEmbed, PatchMerging
from mmengine.registry import MODELS

from ..flops import conv_patch_flops, layer_norm_flops, linear_flops, per_sample
from ..layers import Attention, Mlp, build_parts, dispatched_part
from ..petl import apply_petl
from ..record import BlockRecord, ForwardRecord
from .base import DyTBackbone
from .swin_checkpoint import load_swin_checkpoint

SWIN_ARCHS = {
    't': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    's': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    'b': dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    'l': dict(embed_dims=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
}
SWIN_ARCH_ALIASES = {'tiny': 't', 'small': 's', 'base': 'b', 'large': 'l'}
SWIN_ARCH_KEYS = ('embed_dims', 'depths', 'num_heads')
SWIN_DISPATCH = ('mlp', None)
SWIN_OUT_TYPES = ('featmap', 'avg_featmap')
#: Added to the attention logits of key tokens from another region of a
#: shifted window (the original Swin's value).
SHIFT_MASK_VALUE = -100.0


def window_relative_position_index(window_size):
    """(M, M) index into the ((2w - 1) ** 2, heads) bias table for the
    M = w * w tokens of a window (row-major)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size),
                                        indexing='ij')).flatten(1)
    offsets = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + window_size - 1
    return offsets[..., 0] * (2 * window_size - 1) + offsets[..., 1]


def shift_attention_mask(padded_hw, window_size, shift_size, device):
    """(num_windows, M, M) additive mask of a cyclically shifted (Hp, Wp)
    map: 0 within a region, :data:`SHIFT_MASK_VALUE` across regions. Cached
    across eager forwards; built anew while tracing (torch.export, compile), so
    that no traced tensor leaks into the cache."""
    if torch.compiler.is_compiling():
        return _build_shift_mask(padded_hw, window_size, shift_size, device)
    return _cached_shift_mask(padded_hw, window_size, shift_size, device)


def _build_shift_mask(padded_hw, window_size, shift_size, device):
    region = torch.zeros(padded_hw, device=device)
    bounds = (slice(0, -window_size), slice(-window_size, -shift_size), slice(-shift_size, None))
    for count, (h, w) in enumerate((h, w) for h in bounds for w in bounds):
        region[h, w] = count
    windows = window_partition(region[None, :, :, None], window_size)[0, :, :, 0]
    diff = windows[:, None, :] - windows[:, :, None]
    return torch.where(diff == 0, 0.0, SHIFT_MASK_VALUE)


_cached_shift_mask = functools.lru_cache(maxsize=16)(_build_shift_mask)


def window_partition(x, window_size):
    """(B, Hp, Wp, C) -> (B, num_windows, M, C), windows row-major."""
    batch_size, height, width, channels = x.shape
    x = x.view(batch_size, height // window_size, window_size, width // window_size,
               window_size, channels)
    num_windows = (height // window_size) * (width // window_size)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(batch_size, num_windows, window_size**2, channels)


def window_reverse(windows, padded_hw, window_size):
    """(B, num_windows, M, C) -> (B, Hp, Wp, C)."""
    batch_size, _, _, channels = windows.shape
    height, width = padded_hw
    x = windows.view(batch_size, height // window_size, width // window_size, window_size,
                     window_size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(batch_size, height, width, channels)


class WindowAttention(Attention):
    """Multi-head self-attention within (shifted) windows, with a relative
    position bias (Swin's W-MSA / SW-MSA): the shared :class:`Attention`
    on each window, its own bias the window's relative position table.

    Args:
        embed_dims (int): C.
        num_heads (int): attention heads.
        window_size (int): w, windows of M = w * w tokens.
        qkv_bias (bool): bias of the qkv projection.

    Shapes:
        windows: (B, num_windows, M, C) -> (B, num_windows, M, C)
    """

    def __init__(self, embed_dims, num_heads, window_size, qkv_bias=True):
        super().__init__(embed_dims, num_heads, qkv_bias)
        self.window_size = window_size
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1)**2, num_heads))
        self.register_buffer('relative_position_index',
                             window_relative_position_index(window_size), persistent=False)

    def position_bias(self, num_tokens=None, positions=None, grid=None):
        """(heads, M, M) relative position bias of a window."""
        return self.relative_position_bias_table[self.relative_position_index].permute(2, 0, 1)

    def forward(self, windows, shift_mask=None):
        """``shift_mask`` (num_windows, M, M) additive, for shifted windows.
        The windows of the batch attend as one 4-D batch (the form every
        exporter takes)."""
        batch_size, num_windows = windows.shape[:2]
        bias = None if shift_mask is None else \
            shift_mask.repeat(batch_size, 1, 1)[:, None]
        out = super().forward(windows.flatten(0, 1), bias=bias)
        return out.view(windows.shape)

    def flops(self, num_tokens):
        """Multiply-adds for ``num_tokens`` (padded) tokens in windows of M,
        each attending to its window's M keys."""
        return super().flops(num_tokens, self.window_size**2)


class DyTSwinBlock(nn.Module):
    """A (shifted-)window Swin block whose MLP part is dispatched.

    Args:
        embed_dims (int): C.
        num_heads (int): attention heads.
        window_size (int): window side w.
        shift (bool): shifted windows (every second block of a stage).
        pad_small_map (bool): as mmpretrain: pad a map smaller than the
            window (else an error), and shift even when the map side equals
            the window.
        dispatch (str | None): 'mlp' or None.
        adapter_dim, adapter_scale, adapter_dropout, num_experts, tau,
        drop_path_rate, qkv_bias: as :class:`DyTBlock`.

    Shapes:
        x: (B, H * W, C) with ``hw_shape`` (H, W) -> (B, H * W, C).
    """

    def __init__(self, embed_dims, num_heads, window_size=7, shift=False, pad_small_map=False,
                 *, dispatch='mlp', adapter_dim=64, adapter_scale=1.0, adapter_dropout=0.1,
                 num_experts=1, tau=5.0, drop_path_rate=0.0, qkv_bias=True, mlp_ratio=4):
        super().__init__()
        self.window_size = window_size
        self.shift_size = window_size // 2 if shift else 0
        self.pad_small_map = pad_small_map
        self.drop_path_rate = drop_path_rate
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = WindowAttention(embed_dims, num_heads, window_size, qkv_bias)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = Mlp(embed_dims, embed_dims * mlp_ratio)
        self.parts, self.adapters, self.dispatchers = build_parts(
            dispatch, embed_dims, adapter_dim, num_experts, adapter_scale, adapter_dropout,
            0, tau)

    def window_layout(self, hw_shape):
        """(padded (Hp, Wp), shift) the windows of an (H, W) map use.

        Raises:
            ValueError: the map is smaller than the window and
                ``pad_small_map`` is False.
        """
        height, width = hw_shape
        size, shift = self.window_size, self.shift_size
        if min(height, width) < size and not self.pad_small_map:
            raise ValueError(
                f'a Swin stage gets a {height}x{width} feature map, smaller than window_size '
                f'{size}: its relative position tables cannot serve it. Use a larger input, '
                'a smaller window_size, or pad_small_map=True (pads as mmpretrain does)')
        if min(height, width) == size and not self.pad_small_map:
            shift = 0
        return (-(-height // size) * size, -(-width // size) * size), shift

    def forward(self, x, hw_shape, skip_inactive=False, record=None):
        """(B, H * W, C) -> (B, H * W, C); the MLP mask goes to ``record``."""
        deltas = {'attn': functools.partial(self._attention_delta, hw_shape=hw_shape),
                  'mlp': self._mlp_delta}
        for part in self.parts:
            x, outcome = dispatched_part(
                x, deltas[part], self.dispatchers[part] if part in self.dispatchers else None,
                self.adapters[part] if part in self.adapters else None,
                skip_inactive=skip_inactive, training=self.training,
                drop_path_rate=self.drop_path_rate)
            if record is not None and outcome is not None:
                record.add_part(part, outcome)
        return x

    def _attention_delta(self, tokens, key_mask=None, packed=None, positions=None,
                         hw_shape=None):
        """Window attention on the whole (B, H * W, C) map: pad right and
        bottom to whole windows, shift, attend, shift back, crop."""
        batch_size, _, channels = tokens.shape
        height, width = hw_shape
        padded_hw, shift = self.window_layout(hw_shape)
        x = self.norm1(tokens).view(batch_size, height, width, channels)
        x = F.pad(x, (0, 0, 0, padded_hw[1] - width, 0, padded_hw[0] - height))
        mask = None
        if shift:
            x = torch.roll(x, (-shift, -shift), (1, 2))
            mask = shift_attention_mask(padded_hw, self.window_size, shift, x.device)
        x = self.attn(window_partition(x, self.window_size), mask)
        x = window_reverse(x, padded_hw, self.window_size)
        if shift:
            x = torch.roll(x, (shift, shift), (1, 2))
        return x[:, :height, :width].reshape(batch_size, height * width, channels)

    def _mlp_delta(self, tokens, key_mask=None, packed=None, positions=None):
        return self.mlp(self.norm2(tokens))

    def flops(self, record, hw_shape):
        """Per-sample multiply-adds of the forward ``record`` (a
        :class:`BlockRecord`) describes on an (H, W) map: window attention
        on the padded map, the MLP on the tokens it computed."""
        (padded_h, padded_w), _ = self.window_layout(hw_shape)
        mlp_tokens = record.computed_tokens('mlp')
        total = (layer_norm_flops(self.norm1, record.num_tokens) +
                 self.attn.flops(padded_h * padded_w) +
                 layer_norm_flops(self.norm2, mlp_tokens) + self.mlp.flops(mlp_tokens))
        for module in (*self.adapters.values(), *self.dispatchers.values()):
            total = total + module.flops(record.num_tokens)
        return total


def _merged_shape(hw_shape):
    """Map size after mmcv's 2x2 patch merging (odd sides padded)."""
    return tuple(-(-side // 2) for side in hw_shape)


@MODELS.register_module()
class DyTSwinTransformer(DyTBackbone):
    """Swin Transformer with Dynamic Tuning and the PEFT baselines.

    Args:
        arch (str | dict): 't', 's', 'b', 'l' (or 'tiny' ... 'large') or a
            dict with ``embed_dims``, ``depths`` and ``num_heads``.
        img_size (int | tuple): the input size the model is meant for (the
            dense baseline and FLOPs tools use it); any size whose stage maps
            the windows can serve runs.
        patch_size (int): patch size of the embedding.
        in_channels (int): image channels.
        window_size (int): window side w (7 for the ImageNet-1k/22k 224
            checkpoints; other sizes resize the relative position tables on
            load).
        dispatch (str | None): 'mlp' (DyT) or None (AdaptFormer with
            ``adapter_dim``, else the plain Swin).
        adapter_dim (int | None): adapter bottleneck d; None for no adapter.
        adapter_scale, adapter_dropout, num_experts, tau: as
            :class:`DyTVisionTransformer`.
        freeze_pretrained (bool): freeze the Swin weights (False = full /
            dynamic full tuning).
        out_type (str): 'avg_featmap' pooled (B, C_i) (classification) or
            'featmap' (B, C_i, H_i, W_i) (segmentation).
        out_indices (Sequence[int]): stages whose (normed) output is
            returned.
        drop_path_rate (float): stochastic depth, linear over all blocks.
        pad_small_map (bool): pad maps smaller than the window and shift
            maps the size of the window (mmpretrain's option; True for dense
            prediction).
        skip_inactive (bool): in eval mode, really skip deactivated tokens.
        qkv_bias (bool): bias of the qkv projections.
        pretrained (str | None): Swin checkpoint (mmpretrain, timm or the
            original release), loaded by :meth:`init_weights`;
            ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)``
            is the same (same key mapping and checks).
        petl (dict | list[dict] | None): PETL layers, as for the ViT.
    """

    def __init__(self, arch='b', img_size=224, patch_size=4, in_channels=3, window_size=7,
                 dispatch='mlp', adapter_dim=64, adapter_scale=1.0, adapter_dropout=0.1,
                 num_experts=1, tau=5.0, freeze_pretrained=True, out_type='avg_featmap',
                 out_indices=(3, ), drop_path_rate=0.0, pad_small_map=False,
                 skip_inactive=True, qkv_bias=True, pretrained=None, petl=None,
                 init_cfg=None):
        super().__init__(pretrained, freeze_pretrained, init_cfg)
        self.arch_settings = self.parse_arch(arch, SWIN_ARCHS, SWIN_ARCH_ALIASES,
                                             SWIN_ARCH_KEYS, 'Swin')
        if len(self.arch_settings['depths']) != len(self.arch_settings['num_heads']):
            raise ValueError(f'a custom Swin arch needs one num_heads per stage (depths), got '
                             f'{arch!r}')
        self.check_choices(dispatch, SWIN_DISPATCH, out_type, SWIN_OUT_TYPES, adapter_dim,
                           'DyTSwinTransformer dispatches the MLP of each block: ')
        self.check_positive_int(patch_size=patch_size, in_channels=in_channels,
                                window_size=window_size, adapter_dim=adapter_dim,
                                num_experts=num_experts)
        depths = self.arch_settings['depths']
        num_stages = len(depths)
        self.check_drop_path_rate(drop_path_rate)
        self.out_indices = sorted(self.check_out_indices(out_indices, num_stages, 'stages'))
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.patch_size = patch_size
        self.window_size = window_size
        self.pad_small_map = pad_small_map
        self.dispatch = dispatch
        self.out_type = out_type
        self.skip_inactive = skip_inactive
        self.num_layers = sum(depths)
        embed_dims = self.arch_settings['embed_dims']
        self.num_features = [embed_dims * 2**i for i in range(num_stages)]

        self.patch_embed = PatchEmbed(in_channels=in_channels, embed_dims=embed_dims,
                                      kernel_size=patch_size, stride=patch_size,
                                      norm_cfg=dict(type='LN'))
        rates = iter(torch.linspace(0, drop_path_rate, self.num_layers, device='cpu').tolist())
        self.stages = nn.ModuleList()
        for i, (depth, num_heads) in enumerate(zip(depths, self.arch_settings['num_heads'])):
            stage = nn.Module()
            stage.blocks = nn.ModuleList([
                DyTSwinBlock(self.num_features[i], num_heads, window_size, shift=j % 2 == 1,
                             pad_small_map=pad_small_map, dispatch=dispatch,
                             adapter_dim=adapter_dim, adapter_scale=adapter_scale,
                             adapter_dropout=adapter_dropout, num_experts=num_experts, tau=tau,
                             drop_path_rate=next(rates), qkv_bias=qkv_bias)
                for j in range(depth)
            ])
            stage.downsample = PatchMerging(
                self.num_features[i], 2 * self.num_features[i], norm_cfg=dict(type='LN')
            ) if i < num_stages - 1 else None
            self.stages.append(stage)
        for i in self.out_indices:
            self.add_module(f'norm{i}', nn.LayerNorm(self.num_features[i]))
        self._init_swin_weights()
        if petl:
            apply_petl(self, petl)
        self._set_trainable()

    @property
    def blocks(self):
        """Every block of every stage, in order (global block index)."""
        return [block for stage in self.stages for block in stage.blocks]

    def _init_swin_weights(self):
        for block in self.blocks:
            nn.init.trunc_normal_(block.attn.relative_position_bias_table, std=0.02)
        self.init_block_linears()

    def load_pretrained(self, checkpoint):
        """Load a Swin checkpoint (mmpretrain, timm or the original release),
        the keys under ``pretrained_prefix`` when one is set."""
        load_swin_checkpoint(self, checkpoint, self.pretrained_prefix)

    def stage_shapes(self, grid):
        """(H, W) map of each stage for a patch ``grid``."""
        shapes = [tuple(grid)]
        for _ in self.stages[1:]:
            shapes.append(_merged_shape(shapes[-1]))
        return shapes

    def flops_by_part(self, record, stop=None):
        """Per-sample multiply-adds of the forward ``record`` describes.

        Args:
            record (ForwardRecord): filled by this backbone's forward.
            stop (int | None): count only blocks before this global index.

        Returns:
            dict[str, Tensor]: ``patch_embed``, ``block{i}``, ``downsample{s}``
            and ``norm{s}`` (output norms) -> (B,) float64.
        """
        batch_size = record.batch_size
        stop = self.num_layers if stop is None else stop
        embed = self.patch_embed
        parts = {'patch_embed': per_sample(
            conv_patch_flops(embed.projection, record.num_patches) +
            layer_norm_flops(embed.norm, record.num_patches), None, batch_size)}
        shapes = self.stage_shapes(record.grid)
        stage_of = [s for s, stage in enumerate(self.stages) for _ in stage.blocks]
        for block_record in record.blocks:
            if block_record.index < stop:
                parts[f'block{block_record.index}'] = per_sample(
                    self.blocks[block_record.index].flops(
                        block_record, shapes[stage_of[block_record.index]]),
                    block_record.rows, batch_size)
        ran = {stage_of[b.index] for b in record.blocks if b.index < stop}
        ends = [sum(len(stage.blocks) for stage in self.stages[:s + 1])
                for s in range(len(self.stages))]
        for s, stage in enumerate(self.stages):
            if s not in ran or ends[s] > stop:
                continue
            tokens = shapes[s][0] * shapes[s][1]
            if s in self.out_indices:
                parts[f'norm{s}'] = per_sample(
                    layer_norm_flops(getattr(self, f'norm{s}'), tokens), None, batch_size)
            if stage.downsample is not None:
                merged = shapes[s + 1][0] * shapes[s + 1][1]
                parts[f'downsample{s}'] = per_sample(
                    layer_norm_flops(stage.downsample.norm, merged) +
                    linear_flops(stage.downsample.reduction, merged), None, batch_size)
        return parts

    def forward(self, x, record=None):
        """(B, 3, H, W) -> tuple of one output per ``out_indices`` stage;
        what happened goes to ``record`` when given."""
        record = ForwardRecord() if record is None else record
        self.check_input(x, self.patch_embed.projection.in_channels)
        x, hw_shape = self.patch_embed(x)
        record.batch_size = x.shape[0]
        record.num_tokens = x.shape[1]
        record.num_fixed_tokens = 0
        record.grid = tuple(hw_shape)
        record.dispatcher_names = self.dispatcher_names()
        skip = self.skip_inactive and not self.training
        outs = []
        index = 0
        for s, stage in enumerate(self.stages):
            for block in stage.blocks:
                block_record = BlockRecord(index=index, num_tokens=x.shape[1])
                x = block(x, hw_shape, skip_inactive=skip, record=block_record)
                record.blocks.append(block_record)
                index += 1
            if s in self.out_indices:
                outs.append(self.format_output(getattr(self, f'norm{s}')(x), hw_shape))
            if stage.downsample is not None:
                x, hw_shape = stage.downsample(x, hw_shape)
        return tuple(outs)

    def format_output(self, x, hw_shape):
        """(B, H * W, C) -> (B, C, H, W) ('featmap') or (B, C)
        ('avg_featmap')."""
        if self.out_type == 'avg_featmap':
            return x.mean(1)
        return x.transpose(1, 2).reshape(x.shape[0], -1, *hw_shape).contiguous()
