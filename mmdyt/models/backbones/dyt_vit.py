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

from ..flops import conv_patch_flops, layer_norm_flops, linear_flops, per_sample
from ..layers import (DISPATCH_TABLE, TOKEN_MIXING_PARTS, Attention, AttentionPool, LayerScale, Mlp,
                      RotaryEmbedding2d, SwiGLU, activation_layer, build_layer_scale, build_parts,
                      capacity_tokens, dispatched_part, drop_path, resize_pos_embed)
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
ARCH_KEYS = ('embed_dims', 'num_layers', 'num_heads', 'feedforward_channels')
#: ``family_settings`` of the supervised ViT (ImageNet-21k, mmpretrain's).
SUPERVISED_FAMILY = dict(num_registers=0, layer_scale_init_value=0.0, class_token=True,
                         pre_norm=False, norm_eps=1e-6, act='gelu', proj_dims=None,
                         qkv_bias=True, mlp='mlp', mlp_norm=False, rope=False,
                         rope_ref_grid=None, pool_norm=False)
OUT_TYPES = ('cls_token', 'featmap', 'avg_featmap', 'raw', 'map')


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
        layer_scale_init_value (float): LayerScale on the attention and MLP
            outputs (``ls1``, ``ls2``; DINOv2), initialised to it; 0 = none.
        norm_eps (float): LayerNorm epsilon (CLIP: 1e-5).
        mlp_layer (callable): ``(embed_dims, hidden_dims) -> module``, the MLP
            (:class:`~mmdyt.models.layers.Mlp` with its activation, or
            :class:`~mmdyt.models.layers.SwiGLU`).
        rotary (bool): rotary position embeddings in the attention (EVA-02;
            the tables come with each forward).

    Shapes:
        x: (B, N, C) -> (B, N, C); the masks go to the ``record`` passed.
    """

    #: Part -> the method computing its update. The layer part applies
    #: stochastic depth inside its update.
    PART_DELTAS = {'attn': '_attention_delta', 'mlp': '_mlp_delta', 'layer': '_layer_delta'}

    def __init__(self, embed_dims, num_heads, feedforward_channels, *, dispatch='mlp',
                 adapter_dim=64, adapter_scale=1.0, adapter_dropout=0.1, num_experts=1,
                 num_fixed_tokens=1, tau=5.0, drop_path_rate=0.0, qkv_bias=True,
                 rel_pos_grid=None, layer_scale_init_value=0.0, norm_eps=1e-6,
                 mlp_layer=Mlp, rotary=False):
        super().__init__()
        self.dispatch = dispatch
        self.drop_path_rate = drop_path_rate
        self.parts, self.adapters, self.dispatchers = build_parts(
            dispatch, embed_dims, adapter_dim, num_experts, adapter_scale, adapter_dropout,
            num_fixed_tokens, tau)
        self.norm1 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.attn = Attention(embed_dims, num_heads, qkv_bias, rel_pos_grid, rotary)
        self.ls1 = build_layer_scale(embed_dims, layer_scale_init_value)
        self.norm2 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.mlp = mlp_layer(embed_dims, feedforward_channels)
        self.ls2 = build_layer_scale(embed_dims, layer_scale_init_value)

    def forward(self, x, skip_inactive=False, record=None, reduction=None, capacity=None,
                grid=None, rope=None):
        """(B, N, C) -> (B, N', C); what each dispatched part did (its (B, N)
        mask, capacity mode's counts) goes to ``record`` (a
        :class:`BlockRecord`) when given. ``reduction`` (a token reduction's
        :class:`~mmdyt.models.token_reduction.BlockHook`) may shorten the
        sequence before the block and after each part. ``grid``: the input's
        patch grid, for a relative position bias; ``rope``: the rotary (sin,
        cos) tables of the sequence."""
        x = x if reduction is None else reduction.enter(x)
        positional = {key: value for key, value in (('grid', grid), ('rope', rope))
                      if value is not None}
        for part in self.parts:
            delta = getattr(self, self.PART_DELTAS[part])
            if positional and part != 'mlp':
                delta = functools.partial(delta, **positional)
            x, outcome = dispatched_part(
                x, delta if reduction is None else reduction.delta(part, delta),
                self.dispatchers[part] if part in self.dispatchers else None,
                self.adapters[part] if part in self.adapters else None,
                skip_inactive=skip_inactive, pack=part in TOKEN_MIXING_PARTS,
                training=self.training,
                drop_path_rate=0.0 if part == 'layer' else self.drop_path_rate,
                capacity=capacity)
            if record is not None and outcome is not None:
                record.add_part(part, outcome)
            x = x if reduction is None else reduction.after(part, x)
        return x

    def _attention_delta(self, tokens, key_mask=None, packed=None, positions=None, grid=None,
                         rope=None):
        if packed is not None:
            return self.ls1(self.attn.forward_packed(self.norm1(tokens), packed, grid, rope))
        return self.ls1(self.attn(self.norm1(tokens), key_mask=key_mask, grid=grid,
                                  positions=positions, rope=rope))

    def _mlp_delta(self, tokens, key_mask=None, packed=None, positions=None):
        return self.ls2(self.mlp(self.norm2(tokens)))

    def _layer_delta(self, tokens, key_mask=None, packed=None, positions=None, grid=None,
                     rope=None):
        """The whole layer's update; the masked path (``key_mask`` given)
        applies stochastic depth to each sub-layer, as the dense block does."""
        if key_mask is not None:
            y = tokens + drop_path(self._attention_delta(tokens, key_mask, positions=positions,
                                                         grid=grid, rope=rope),
                                   self.drop_path_rate, self.training)
            y = y + drop_path(self._mlp_delta(y), self.drop_path_rate, self.training)
            return y - tokens
        attn = self._attention_delta(tokens, packed=packed, grid=grid, rope=rope)
        return attn + self._mlp_delta(tokens + attn)

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
        for scale, tokens in ((self.ls1, attn_tokens), (self.ls2, mlp_tokens)):
            if isinstance(scale, LayerScale):
                total = total + scale.flops(tokens)
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


def check_family_settings(class_token, out_type, proj_dims, rel_pos_bias, mlp='mlp', act='gelu',
                          mlp_norm=False, pool_norm=False):
    """Refuse, naming both, the options of the foundation families that do
    not go together: a class-token output or a relative position bias (built
    for a class token) without a class token, a projection or a pooled norm
    of anything but the pooled output, an activation or a sub-LN the MLP
    does not have."""
    if mlp not in ('mlp', 'swiglu'):
        raise ValueError(f"mlp must be 'mlp' or 'swiglu', got {mlp!r}")
    if mlp == 'swiglu' and act != 'gelu':
        raise ValueError(f"mlp='swiglu' gates with SiLU: it cannot be combined with act={act!r}")
    if mlp_norm and mlp != 'swiglu':
        raise ValueError("mlp_norm (the sub-LN of EVA-02's SwiGLU) needs mlp='swiglu'")
    if pool_norm and out_type != 'avg_featmap':
        raise ValueError(f"pool_norm normalises the averaged tokens: it needs "
                         f"out_type='avg_featmap', got out_type={out_type!r}")
    if not class_token and out_type == 'cls_token':
        raise ValueError("out_type='cls_token' needs class_token=True: without a class token "
                         "read the pooled output (out_type='map' or 'avg_featmap')")
    if not class_token and rel_pos_bias:
        raise ValueError('rel_pos_bias is built for a class token and the patches: it cannot '
                         'be combined with class_token=False')
    if proj_dims and out_type not in ('cls_token', 'map', 'avg_featmap'):
        raise ValueError(f'proj_dims projects the pooled output (CLIP): it cannot be combined '
                         f'with out_type={out_type!r}')


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
        num_registers (int): register tokens (DINOv2 with registers: 4),
            after the class token, without position embedding, never
            dispatched; 0 = none.
        layer_scale_init_value (float): LayerScale on both branches of every
            block (DINOv2: 1e-5; the checkpoint's values replace it); 0 = none.
        class_token (bool): a class token (False: SigLIP; read a pooled
            output, every patch token is dispatchable).
        pre_norm (bool): a LayerNorm after the position embedding (CLIP's
            ``ln_pre``, ``norm_pre``); also drops the patch embedding's bias.
        norm_eps (float): LayerNorm epsilon (CLIP: 1e-5).
        act (str): MLP activation, 'gelu', 'quick_gelu' (OpenAI CLIP) or
            'gelu_tanh'.
        proj_dims (int | None): a bias-free projection of the pooled output
            (CLIP's ``proj``); None = none.
        mlp (str): 'mlp' or 'swiglu' (EVA-02).
        mlp_norm (bool): the LayerNorm of the SwiGLU hidden features (EVA-02's
            sub-LN).
        rope (bool): 2-D rotary position embeddings in every attention
            (EVA-02), following each token's own position when tokens are
            packed or gathered.
        rope_ref_grid (tuple[int, int] | None): the pretraining patch grid the
            rotary positions are rescaled to (EVA-02: (16, 16)); None = none.
        pool_norm (bool): a LayerNorm after the average pooling (timm's
            ``fc_norm``; EVA-02), with ``out_type='avg_featmap'``.
        freeze_pretrained (bool): freeze the ViT weights (PEFT). False trains
            everything, i.e. full tuning or dynamic full tuning.
        out_type (str): 'cls_token' (B, C), 'featmap' (B, C, H, W),
            'avg_featmap' (B, C), 'map' (B, C) attention pooling (SigLIP) or
            'raw' (B, N, C) patch tokens.
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
            and indexed by the input's grid, :func:`~mmdyt.models.layers.relative_position_index`;
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
                 capacity_warning=0.01, rel_pos_bias=False, num_registers=0,
                 layer_scale_init_value=0.0, class_token=True, pre_norm=False, norm_eps=1e-6,
                 act='gelu', proj_dims=None, mlp='mlp', mlp_norm=False, rope=False,
                 rope_ref_grid=None, pool_norm=False, init_cfg=None):
        super().__init__(pretrained, freeze_pretrained, init_cfg)
        self.arch_settings = self.parse_arch(arch, ARCHS, ARCH_ALIASES, ARCH_KEYS, 'ViT')
        self.check_choices(dispatch, DISPATCH_TABLE, out_type, OUT_TYPES, adapter_dim)
        check_family_settings(class_token, out_type, proj_dims, rel_pos_bias, mlp, act, mlp_norm,
                              pool_norm)
        self.check_positive_int(patch_size=patch_size, in_channels=in_channels,
                                adapter_dim=adapter_dim, num_experts=num_experts,
                                proj_dims=proj_dims)
        #: What makes this ViT a DINOv2 / CLIP / SigLIP rather than the
        #: supervised one: the settings a dense twin of it needs.
        self.family_settings = dict(
            num_registers=num_registers, layer_scale_init_value=layer_scale_init_value,
            class_token=class_token, pre_norm=pre_norm, norm_eps=norm_eps, act=act,
            proj_dims=proj_dims, qkv_bias=qkv_bias, mlp=mlp, mlp_norm=mlp_norm, rope=rope,
            rope_ref_grid=rope_ref_grid, pool_norm=pool_norm)
        for name, value in (('num_prompts', num_prompts), ('lora_rank', lora_rank),
                            ('num_registers', num_registers)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f'{name} must be an int >= 0, got {value!r}')
        if rel_pos_bias and (num_prompts or num_registers):
            raise ValueError('rel_pos_bias is built for a class token and the patches: '
                             'it cannot be combined with num_prompts or num_registers')
        embed_dims = self.arch_settings['embed_dims']
        num_layers = self.arch_settings['num_layers']
        self.embed_dims = embed_dims
        self.num_layers = num_layers
        self.patch_size = patch_size
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        if len(self.img_size) != 2 or any(not isinstance(s, int) or s < patch_size
                                          for s in self.img_size):
            raise ValueError(f'img_size must be an int or (H, W), each at least patch_size='
                             f'{patch_size}, got {img_size!r}')
        self.patch_resolution = tuple(s // patch_size for s in self.img_size)
        self.dispatch = dispatch
        self.rel_pos_bias = rel_pos_bias
        self.num_prompts = num_prompts
        self.num_registers = num_registers
        self.class_token = class_token
        self.num_fixed_tokens = int(class_token) + num_registers + num_prompts
        self.out_type = out_type
        self.final_norm = final_norm
        self.skip_inactive = skip_inactive
        if capacity is not None:
            capacity_tokens(capacity, 1)  # checks the range
        self.capacity, self.capacity_warning = capacity, capacity_warning
        self.check_drop_path_rate(drop_path_rate)
        self.out_indices = self.check_out_indices(out_indices, num_layers, 'blocks')

        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_channels, embed_dims, patch_size, patch_size,
                                          bias=not pre_norm)
        num_patches = self.patch_resolution[0] * self.patch_resolution[1]
        if class_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.pos_embed = nn.Parameter(torch.zeros(1, int(class_token) + num_patches, embed_dims))
        if num_registers:
            self.reg_token = nn.Parameter(torch.zeros(1, num_registers, embed_dims))
        self.norm_pre = nn.LayerNorm(embed_dims, eps=norm_eps) if pre_norm else nn.Identity()
        rates = torch.linspace(0, drop_path_rate, num_layers, device='cpu').tolist()
        mlp_layer = functools.partial(SwiGLU, norm_eps=norm_eps if mlp_norm else None) \
            if mlp == 'swiglu' else functools.partial(Mlp, act_layer=activation_layer(act))
        self.blocks = nn.ModuleList([
            DyTBlock(embed_dims, self.arch_settings['num_heads'],
                     self.arch_settings['feedforward_channels'], dispatch=dispatch,
                     adapter_dim=adapter_dim, adapter_scale=adapter_scale,
                     adapter_dropout=adapter_dropout, num_experts=num_experts,
                     num_fixed_tokens=self.num_fixed_tokens, tau=tau,
                     drop_path_rate=rates[i], qkv_bias=qkv_bias,
                     rel_pos_grid=self.patch_resolution if rel_pos_bias else None,
                     layer_scale_init_value=layer_scale_init_value, norm_eps=norm_eps,
                     mlp_layer=mlp_layer, rotary=rope)
            for i in range(num_layers)
        ])
        if rope:
            self.rotary = RotaryEmbedding2d(embed_dims // self.arch_settings['num_heads'],
                                            rope_ref_grid)
        if pool_norm:
            self.fc_norm = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps) if final_norm else nn.Identity()
        if out_type == 'map':
            self.attn_pool = AttentionPool(embed_dims, self.arch_settings['num_heads'],
                                           self.arch_settings['feedforward_channels'],
                                           activation_layer(act), norm_eps)
        if proj_dims:
            self.proj = nn.Linear(embed_dims, proj_dims, bias=False)
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
    def _with_deprecated_lora(petl, lora_rank, lora_alpha):
        """``petl`` as a list, with the deprecated ``lora_rank`` turned into
        its ``petl`` entry."""
        petl = [] if petl is None else list(petl) if isinstance(petl, (list, tuple)) else [petl]
        if lora_rank:
            warnings.warn("DyTVisionTransformer(lora_rank=...) is deprecated and will be "
                          "removed in mmdyt 0.3.0: use petl=dict(type='lora', "
                          f"rank={lora_rank}, alpha={lora_alpha}, targets=['qkv'])",
                          DeprecationWarning, stacklevel=3)
            petl.insert(0, dict(type='lora', rank=lora_rank, alpha=lora_alpha))
        return petl

    def _init_vit_weights(self):
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.class_token:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        if self.num_registers:
            nn.init.trunc_normal_(self.reg_token, std=0.02)
        self.init_block_linears()

    def upgrade_state_dict(self, state_dict):
        """Rename the keys of checkpoints written by earlier releases
        (``upgrade_legacy_keys``)."""
        upgrade_legacy_keys(state_dict)

    def load_pretrained(self, checkpoint):
        """Load a ViT checkpoint (mmpretrain, timm or original ``.npz``),
        the keys under ``pretrained_prefix`` when one is set."""
        load_vit_checkpoint(self, checkpoint, self.pretrained_prefix)

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
        parts = {'patch_embed': per_sample(
            conv_patch_flops(self.patch_embed.proj, record.num_patches), None, batch_size)}
        if isinstance(self.norm_pre, nn.LayerNorm):
            parts['norm_pre'] = per_sample(
                layer_norm_flops(self.norm_pre, record.num_tokens - self.num_prompts), None,
                batch_size)
        stop = self.num_layers if stop is None else stop
        for block_record in record.blocks:
            if block_record.index < stop:
                block = self.blocks[block_record.index]
                flops = block.flops(block_record)
                if self.token_reduction is not None:
                    flops = flops + self.token_reduction.flops(block, block_record)
                parts[f'block{block_record.index}'] = per_sample(flops, block_record.rows,
                                                                 batch_size)
        last = record.blocks[-1] if record.blocks else None
        if self.final_norm and stop == self.num_layers and last is not None \
                and last.index == self.num_layers - 1:
            parts['norm'] = per_sample(layer_norm_flops(self.norm, last.tokens('mlp')),
                                       last.rows, batch_size)
        pooled = [b for b in record.blocks if b.index < stop and b.index in self.out_indices]
        for name, count in self.pooled_output_flops().items():
            for block_record in pooled:
                parts[f'{name}{block_record.index}'] = per_sample(
                    count(block_record.tokens('mlp')), block_record.rows, batch_size)
        return parts

    def pooled_output_flops(self):
        """Output module name -> its per-sample count as a function of the
        tokens of the block output it reads: the attention pooling (MAP) and
        the projection (CLIP), each applied at every ``out_indices`` block."""
        counts = {}
        if self.out_type == 'map':
            counts['attn_pool'] = self.attn_pool.flops
        if hasattr(self, 'fc_norm'):
            counts['fc_norm'] = lambda num_tokens: layer_norm_flops(self.fc_norm, 1)
        if hasattr(self, 'proj'):
            counts['proj'] = lambda num_tokens: linear_flops(self.proj, 1)
        return counts

    # ---- forward ----------------------------------------------------------
    def embed(self, x, record=None):
        """(B, 3, H, W) -> tokens (B, T + R + h * w, C): the class token (T = 1,
        0 without), R registers, the patches, ``h = ceil(H / patch)``
        (:func:`pad_to_patches`), pre-normed with ``pre_norm``; ``record`` gets
        the batch size, the patch grid and the dispatcher layout."""
        self.check_input(x, self.patch_embed.proj.in_channels)
        x = self.patch_embed.proj(pad_to_patches(x, self.patch_size))
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)
        pos_embed = resize_pos_embed(self.pos_embed, self.patch_resolution, grid,
                                     int(self.class_token))
        if self.class_token:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)
        x = x + pos_embed
        if self.num_registers:
            leading = int(self.class_token)
            x = torch.cat([x[:, :leading], self.reg_token.expand(x.shape[0], -1, -1),
                           x[:, leading:]], 1)
        if record is not None:
            record.batch_size = x.shape[0]
            record.num_tokens = x.shape[1] + self.num_prompts
            record.num_fixed_tokens = self.num_fixed_tokens
            record.grid = grid
            record.dispatcher_names = self.dispatcher_names()
        return self.norm_pre(x).contiguous()

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
        rope = self.rotary.tables(record.grid, self.num_fixed_tokens) \
            if hasattr(self, 'rotary') else None
        for i in range(start, stop):
            if self.num_prompts:
                prompts = self.prompts[i].expand(x.shape[0], -1, -1)
                leading = int(self.class_token) + self.num_registers
                x = torch.cat([x[:, :leading], prompts,
                               x[:, self.num_fixed_tokens if i else leading:]], 1)
            block_record = BlockRecord(index=i, num_tokens=x.shape[1], rows=rows)
            hook = None if self.token_reduction is None else self.token_reduction.block_hook(
                self.blocks[i], block_record, record.blocks[-1] if record.blocks else None)
            x = self.blocks[i](x, skip_inactive=skip, record=block_record, reduction=hook,
                               capacity=self.capacity if skip else None,
                               grid=record.grid if any(record.grid) else None, rope=rope)
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
        outs, start = [], 0
        for i in sorted(self.out_indices):  # one run_blocks call per output, not per block
            x = self.run_blocks(x, record, start, i + 1)
            outs.append(self.format_output(x, record.grid))
            start = i + 1
        x = self.run_blocks(x, record, start)
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
        """(B, N, C) tokens -> the ``out_type`` output, projected to
        ``proj_dims`` when the model has a projection (CLIP)."""
        patches = x[:, self.num_fixed_tokens:]
        if self.out_type == 'raw':
            return patches
        if self.out_type == 'featmap':
            return patches.transpose(1, 2).reshape(x.shape[0], x.shape[-1], *grid)
        if self.out_type == 'cls_token':
            pooled = x[:, 0]
        elif self.out_type == 'map':
            pooled = self.attn_pool(x)
        else:
            pooled = patches.mean(1)
            pooled = self.fc_norm(pooled) if hasattr(self, 'fc_norm') else pooled
        return self.proj(pooled) if hasattr(self, 'proj') else pooled
