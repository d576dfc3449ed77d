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
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.registry import MODELS

from ..layers import (Adapter, LoRALinear, TokenDispatcher, build_adapter,
                      linear, resize_pos_embed)
from ..petl import apply_petl, petl_flops
from .checkpoint import load_vit_checkpoint

ARCHS = {
    't': dict(embed_dims=192, num_layers=12, num_heads=3, feedforward_channels=768),
    's': dict(embed_dims=384, num_layers=12, num_heads=6, feedforward_channels=1536),
    'b': dict(embed_dims=768, num_layers=12, num_heads=12, feedforward_channels=3072),
    'l': dict(embed_dims=1024, num_layers=24, num_heads=16, feedforward_channels=4096),
}
ARCH_ALIASES = {'tiny': 't', 'small': 's', 'base': 'b', 'large': 'l',
                'deit-tiny': 't', 'deit-small': 's'}
DISPATCH_VARIANTS = ('mlp', 'attn', 'attn_mlp', 'layer', None)
OUT_TYPES = ('cls_token', 'featmap', 'avg_featmap', 'raw')
LN_FLOPS_PER_ELEMENT = 5  # fvcore's count for an affine LayerNorm


def drop_path(x, rate, training):
    """Stochastic depth on the sample dimension of (B, ..., C) tensors."""
    if rate == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - rate)
    return x * keep / (1 - rate)


class PackedTokens:
    """Index bookkeeping for running a block on each sample's active tokens.

    Args:
        mask (Tensor): (B, N) bool, True = active.
        flat_index (Tensor, optional): ``mask.flatten().nonzero().squeeze(1)``
            when the caller has it already.

    Attributes:
        flat_index (Tensor): (S,) rows of the (B * N, C) view that are active.
        padded_index (Tensor): (S,) rows of a (B * K_max, C) padded view where
            each active token goes, samples packed to the left.
        key_padding (Tensor): (B, 1, 1, K_max) bool, True for real keys.
    """

    def __init__(self, mask, flat_index=None):
        batch_size = mask.shape[0]
        counts = mask.sum(1)
        self.max_count = int(counts.max())
        self.batch_size = batch_size
        self.flat_index = (mask.flatten().nonzero().squeeze(1)
                           if flat_index is None else flat_index)
        slot = (mask.cumsum(1) - 1)[mask]
        sample = self.flat_index // mask.shape[1]
        self.padded_index = sample * self.max_count + slot
        self.key_padding = (torch.arange(self.max_count, device=mask.device) <
                            counts[:, None])[:, None, None, :]

    def to_padded(self, tokens):
        """(S, D) packed tokens -> (B, K_max, D), zero padded."""
        padded = tokens.new_zeros(self.batch_size * self.max_count, tokens.shape[-1])
        padded.index_copy_(0, self.padded_index, tokens)
        return padded.view(self.batch_size, self.max_count, -1)

    def from_padded(self, padded):
        """(B, K_max, D) -> (S, D) packed tokens."""
        return padded.reshape(-1, padded.shape[-1]).index_select(0, self.padded_index)


class Attention(nn.Module):
    """Multi-head self-attention.

    Shapes:
        x: (B, N, C) -> (B, N, C)
    """

    def __init__(self, embed_dims, num_heads, qkv_bias=True):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def _split_heads(self, qkv):
        batch_size, num_tokens, _ = qkv.shape
        return qkv.reshape(batch_size, num_tokens, 3, self.num_heads,
                           -1).permute(2, 0, 3, 1, 4).unbind(0)

    def _merge_heads(self, x):
        return x.transpose(1, 2).flatten(2)

    def forward(self, x, key_mask=None):
        """``key_mask`` (B, N) float in [0, 1] (1 = key kept) removes keys from
        the softmax by renormalising the probabilities, which stays
        differentiable with respect to a straight-through mask."""
        q, k, v = self._split_heads(linear(self.qkv, x))
        if key_mask is None:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            probs = (q @ k.transpose(-2, -1) * q.shape[-1]**-0.5).softmax(-1)
            probs = probs * key_mask[:, None, None, :]
            out = probs / probs.sum(-1, keepdim=True) @ v
        return linear(self.proj, self._merge_heads(out))

    def forward_packed(self, tokens, packed):
        """Attention among each sample's active tokens only.

        Args:
            tokens (Tensor): (S, C) active tokens of the whole batch.
            packed (PackedTokens): where they come from.

        Returns:
            Tensor: (S, C)
        """
        qkv = packed.to_padded(linear(self.qkv, tokens))
        q, k, v = self._split_heads(qkv)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=packed.key_padding)
        return linear(self.proj, packed.from_padded(self._merge_heads(out)))

    def flops(self, num_tokens):
        """Multiply-adds for ``num_tokens`` tokens attending to each other."""
        embed_dims = self.proj.in_features
        qkv = self.qkv.flops(num_tokens) if isinstance(
            self.qkv, LoRALinear) else 0
        return (qkv + 4 * num_tokens * embed_dims**2 +
                2 * num_tokens**2 * embed_dims)


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2. Shapes: (..., C) -> (..., C)."""

    def __init__(self, embed_dims, hidden_dims):
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def forward(self, x):
        return linear(self.fc2, linear(self.fc1, x, gelu=True))

    def flops(self, num_tokens):
        return 2 * num_tokens * self.fc1.in_features * self.fc1.out_features


class DyTBlock(nn.Module):
    """A pre-norm transformer block with dynamic tuning.

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

    Shapes:
        x: (B, N, C) -> (B, N, C); ``self.masks`` holds the (B, N) masks of
        the last forward, one per dispatcher.
    """

    def __init__(self, embed_dims, num_heads, feedforward_channels,
                 dispatch='mlp', adapter_dim=64, adapter_scale=1.0,
                 adapter_dropout=0.1, num_experts=1, num_fixed_tokens=1,
                 tau=5.0, drop_path_rate=0.0, qkv_bias=True):
        super().__init__()
        self.dispatch = dispatch
        self.drop_path_rate = drop_path_rate
        self.norm1 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.attn = Attention(embed_dims, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mlp = Mlp(embed_dims, feedforward_channels)
        # One (dispatcher, adapter) pair per dispatched part; 'mlp' names the
        # pair that sits beside the MLP, which is also AdaptFormer's place.
        parts = {'mlp': ['mlp'], 'attn': ['attn'], 'attn_mlp': ['attn', 'mlp'],
                 'layer': ['layer'], None: ['mlp']}[dispatch]
        self.adapters = nn.ModuleDict({
            part: build_adapter(embed_dims, adapter_dim, num_experts,
                                adapter_scale, adapter_dropout)
            for part in parts
        } if adapter_dim is not None else {})
        self.dispatchers = nn.ModuleDict({
            part: TokenDispatcher(embed_dims, num_fixed_tokens, tau)
            for part in parts
        } if dispatch is not None else {})
        self.masks = []

    def _adapter(self, part, x):
        adapter = self.adapters[part] if part in self.adapters else None
        return 0 if adapter is None else adapter(x)

    def _residual(self, x):
        return drop_path(x, self.drop_path_rate, self.training)

    def _dispatch(self, part, x):
        mask = self.dispatchers[part](x)
        self.masks.append(mask)
        return mask

    def forward(self, x, skip_inactive=False):
        self.masks = []
        if self.dispatch == 'layer':
            return self._forward_layer(x, skip_inactive)
        x = self._forward_attn(x, skip_inactive)
        return self._forward_mlp(x, skip_inactive)

    def _forward_attn(self, x, skip_inactive):
        if 'attn' not in self.dispatchers:
            return x + self._residual(self.attn(self.norm1(x)))
        mask = self._dispatch('attn', x)
        if skip_inactive:
            return self._skip('attn', x, mask, self._attention, pack=True)
        update = self._adapter('attn', x)
        mask = mask.to(x.dtype)
        out = self.attn(self.norm1(x), key_mask=mask) * mask[..., None]
        return x + self._residual(out) + update

    def _forward_mlp(self, x, skip_inactive):
        if 'mlp' not in self.dispatchers:
            out = self._residual(self.mlp(self.norm2(x)))
            return x + out + self._adapter('mlp', x)
        mask = self._dispatch('mlp', x)
        if skip_inactive:
            return self._skip('mlp', x, mask, lambda tokens, packed: self.mlp(self.norm2(tokens)))
        update = self._adapter('mlp', x)
        out = self.mlp(self.norm2(x)) * mask.to(x.dtype)[..., None]
        return x + self._residual(out) + update

    def _forward_layer(self, x, skip_inactive):
        mask = self._dispatch('layer', x)
        if skip_inactive:
            return self._skip('layer', x, mask, self._layer_delta, pack=True)
        update = self._adapter('layer', x)
        mask = mask.to(x.dtype)
        y = x + self._residual(self.attn(self.norm1(x), key_mask=mask))
        y = y + self._residual(self.mlp(self.norm2(y)))
        return x + (y - x) * mask[..., None] + update

    # ---- skipping path (inference) -----------------------------------------
    def _with_adapter(self, part, x):
        """``x + adapter(x)`` as a new contiguous (B, N, C) tensor. A plain
        adapter in eval mode is fused into the residual: one ``addmm`` adds
        its up projection to ``x``."""
        adapter = self.adapters[part] if part in self.adapters else None
        if type(adapter) is not Adapter or adapter.training:
            return x + self._adapter(part, x)
        flat = x.reshape(-1, x.shape[-1])
        hidden = F.relu(adapter.down(flat), inplace=True)
        out = torch.addmm(flat, hidden, adapter.up.weight.t(), alpha=adapter.scale)
        return out.add_(adapter.up.bias, alpha=adapter.scale).view_as(x)

    def _skip(self, part, x, mask, delta, pack=False):
        """Skipping path: every token gets ``x + adapter(x)``, and only the
        active ones also get ``delta`` of the dispatched part.

        Args:
            part (str): 'attn', 'mlp' or 'layer'.
            x (Tensor): (B, N, C), contiguous.
            mask (Tensor): (B, N) bool.
            delta (callable): ``delta(tokens, packed)`` -> update of the
                tokens, shaped like them. Called with all tokens (B, N, C) and
                ``packed=None`` when every token is active (no gather or
                scatter), else with the (S, C) active tokens and their
                :class:`PackedTokens` (``pack=True``) or None.
            pack (bool): whether ``delta`` needs the packing (attention).

        Returns:
            Tensor: (B, N, C).
        """
        out = self._with_adapter(part, x)
        index = mask.flatten().nonzero().squeeze(1)
        if index.numel() == mask.numel():
            return out.add_(delta(x, None))
        packed = PackedTokens(mask, index) if pack else None
        active = x.reshape(-1, x.shape[-1]).index_select(0, index)
        out.view(-1, x.shape[-1]).index_add_(0, index, delta(active, packed))
        return out

    def _attention(self, tokens, packed):
        """Attention of the active tokens: dense when ``packed`` is None."""
        if packed is None:
            return self.attn(self.norm1(tokens))
        return self.attn.forward_packed(self.norm1(tokens), packed)

    def _layer_delta(self, tokens, packed):
        attn = self._attention(tokens, packed)
        return attn + self.mlp(self.norm2(tokens + attn))

    def active_counts(self, num_tokens):
        """Active tokens per sample of the last forward for the attention and
        the MLP part: two (B,) tensors (or ints when nothing is dispatched)."""
        counts = {part: mask.sum(1).to('cpu', torch.float64)
                  for part, mask in zip(self.dispatchers, self.masks)}
        if 'layer' in counts:
            return counts['layer'], counts['layer']
        return counts.get('attn', num_tokens), counts.get('mlp', num_tokens)

    def flops(self, num_tokens):
        """Per-sample multiply-adds of the last forward, counting only the
        tokens the skipping path computes: (B,) tensor, or int when nothing is
        dispatched. Counts LayerNorms (fvcore convention), attention matmuls,
        adapters, dispatcher gates and patched-in PETL modules."""
        embed_dims = self.norm1.normalized_shape[0]
        attn_tokens, mlp_tokens = self.active_counts(num_tokens)
        total = (self.attn.flops(attn_tokens) + self.mlp.flops(mlp_tokens) +
                 LN_FLOPS_PER_ELEMENT * embed_dims * (attn_tokens + mlp_tokens))
        for adapter in self.adapters.values():
            total = total + adapter.flops(num_tokens)
            if hasattr(adapter, 'routing_flops'):
                total = total + adapter.routing_flops()
        for dispatcher in self.dispatchers.values():
            total = total + (num_tokens - dispatcher.num_fixed_tokens) * embed_dims
        return total + petl_flops(self, num_tokens)


@MODELS.register_module()
class DyTVisionTransformer(BaseModule):
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
        lora_rank (int): LoRA rank on every qkv projection; 0 = no LoRA.
        lora_alpha (float): LoRA scaling numerator.
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
        pretrained (str | None): ViT checkpoint (mmpretrain, timm or original
            ``.npz``) loaded by :meth:`init_weights`.
        petl (dict | list[dict] | None): PETL modules patched in by
            :func:`mmdyt.models.petl.apply_petl`, e.g.
            ``dict(type='rep_adapter', dim=8)`` or ``dict(type='houlsby')``.
    """

    def __init__(self, arch='b', img_size=224, patch_size=16, in_channels=3,
                 dispatch='mlp', adapter_dim=64, adapter_scale=1.0,
                 adapter_dropout=0.1, num_experts=1, tau=5.0, lora_rank=0,
                 lora_alpha=8.0, num_prompts=0, freeze_pretrained=True,
                 out_type='cls_token', out_indices=-1, final_norm=True,
                 drop_path_rate=0.0, skip_inactive=True, qkv_bias=True,
                 pretrained=None, petl=None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = self._parse_arch(arch)
        if dispatch not in DISPATCH_VARIANTS:
            raise ValueError(f'dispatch must be one of {DISPATCH_VARIANTS}, '
                             f'got {dispatch!r}')
        if out_type not in OUT_TYPES:
            raise ValueError(f'out_type must be one of {OUT_TYPES}, got {out_type!r}')
        if dispatch is not None and adapter_dim is None:
            raise ValueError('adapter_dim must be set when dispatch is used: '
                             'skipped tokens are updated by the adapter only')
        if num_prompts < 0 or lora_rank < 0:
            raise ValueError('num_prompts and lora_rank must be >= 0')
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
        self.freeze_pretrained = freeze_pretrained
        self.pretrained = pretrained
        indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        self.out_indices = [i % num_layers for i in indices]

        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_channels, embed_dims, patch_size, patch_size)
        num_patches = self.patch_resolution[0] * self.patch_resolution[1]
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + num_patches, embed_dims))
        rates = torch.linspace(0, drop_path_rate, num_layers).tolist()
        self.blocks = nn.ModuleList([
            DyTBlock(embed_dims, self.arch_settings['num_heads'],
                     self.arch_settings['feedforward_channels'], dispatch,
                     adapter_dim, adapter_scale, adapter_dropout, num_experts,
                     self.num_fixed_tokens, tau, rates[i], qkv_bias)
            for i in range(num_layers)
        ])
        self.norm = nn.LayerNorm(embed_dims, eps=1e-6) if final_norm else nn.Identity()
        if lora_rank:
            for block in self.blocks:
                block.attn.qkv = LoRALinear(block.attn.qkv, lora_rank, lora_alpha)
        if num_prompts:
            bound = math.sqrt(6.0 / (3 * patch_size**2 + embed_dims))
            self.prompts = nn.Parameter(
                torch.empty(num_layers, num_prompts, embed_dims).uniform_(-bound, bound))
        self._init_vit_weights()
        if petl is not None:
            apply_petl(self, petl)
        self._set_trainable()
        self.register_load_state_dict_pre_hook(self._check_state_dict_shapes)
        self._last_num_tokens = None

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

    def _init_vit_weights(self):
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for block in self.blocks:
            for layer in (block.attn.proj, block.mlp.fc1, block.mlp.fc2):
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
            qkv = block.attn.qkv.base if self.lora_enabled else block.attn.qkv
            nn.init.trunc_normal_(qkv.weight, std=0.02)
            if qkv.bias is not None:
                nn.init.zeros_(qkv.bias)

    def _check_state_dict_shapes(self, module, state_dict, prefix, *args):
        """Refuse a state dict whose tensors do not fit this backbone (another
        arch or patch size), whichever loader (load_from, resume, test) is
        used: mmengine loads with ``strict=False`` and would only warn."""
        own = dict(self.named_parameters())
        own.update(self.named_buffers())
        for name, tensor in own.items():
            value = state_dict.get(prefix + name)
            if value is not None and value.shape != tensor.shape:
                raise ValueError(
                    f'checkpoint does not fit the model: {prefix}{name} has shape '
                    f'{tuple(value.shape)} in the checkpoint and {tuple(tensor.shape)} '
                    'in the model (another arch or patch size?)')

    @property
    def lora_enabled(self):
        return isinstance(self.blocks[0].attn.qkv, LoRALinear)

    def init_weights(self):
        """Load ``pretrained`` (if any) into the ViT weights."""
        if self.pretrained is not None:
            load_vit_checkpoint(self, self.pretrained)
        elif self.init_cfg is not None:
            super().init_weights()

    def _set_trainable(self):
        if not self.freeze_pretrained:
            return
        for name, param in self.named_parameters():
            param.requires_grad = self.is_tuning_parameter(name)

    #: Substrings of the parameter names of PEFT modules; anything else is a
    #: pretrained ViT weight (frozen unless ``freeze_pretrained=False``).
    TUNING_KEYS = ('adapters.', 'dispatchers.', 'lora_', 'prompts', 'petl_')

    @classmethod
    def is_tuning_parameter(cls, name):
        """Whether a parameter belongs to the PEFT modules (not the ViT)."""
        return any(key in name for key in cls.TUNING_KEYS)

    # ---- run-time controls and statistics ---------------------------------
    def dispatchers(self):
        """All token dispatchers, block by block."""
        return [d for block in self.blocks for d in block.dispatchers.values()]

    def set_tau(self, tau):
        for dispatcher in self.dispatchers():
            dispatcher.tau = tau

    def masks(self):
        """Masks of the last forward: list of (B, N) tensors, one per
        dispatcher, class and prompt tokens included."""
        return [mask for block in self.blocks for mask in block.masks]

    def activation_rates(self):
        """(num_dispatchers,) mean rate over batch and patch tokens of the last
        forward, detached."""
        fixed = self.num_fixed_tokens
        masks = self.masks()
        if not masks:
            return torch.zeros(0)
        return torch.stack([m[:, fixed:].float().mean().detach() for m in masks])

    def flops(self):
        """(B,) multiply-adds per sample of the last forward, counting only the
        tokens the skipping path computes (fvcore convention: one multiply-add
        is one FLOP; attention matmuls and LayerNorms counted)."""
        if self._last_num_tokens is None:
            raise RuntimeError('flops() needs a forward pass first')
        batch_size, num_tokens = self._last_num_tokens
        num_patches = num_tokens - self.num_fixed_tokens
        embed = self.patch_embed.proj
        total = torch.full((batch_size,), float(
            num_patches * embed.out_channels * embed.in_channels * self.patch_size**2),
            dtype=torch.float64)
        for block in self.blocks:
            total = total + block.flops(num_tokens)
        if self.final_norm:
            total = total + LN_FLOPS_PER_ELEMENT * self.embed_dims * num_tokens
        return total

    # ---- forward ----------------------------------------------------------
    def embed(self, x):
        """(B, 3, H, W) -> tokens (B, 1 + h * w, C) and the patch grid (h, w)."""
        x = self.patch_embed.proj(x)
        grid = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        pos_embed = resize_pos_embed(self.pos_embed, self.patch_resolution, grid)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)
        return x + pos_embed, tuple(grid)

    def forward(self, x):
        """(B, 3, H, W) -> tuple of outputs, one per ``out_indices``."""
        x, grid = self.embed(x)
        skip = self.skip_inactive and not self.training
        outs = []
        for i, block in enumerate(self.blocks):
            if self.num_prompts:
                prompts = self.prompts[i].expand(x.shape[0], -1, -1)
                x = torch.cat([x[:, :1], prompts, x[:, self.num_fixed_tokens if i else 1:]], 1)
            x = block(x, skip_inactive=skip)
            if i == self.num_layers - 1:
                x = self.norm(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, grid))
        self._last_num_tokens = tuple(x.shape[:2])
        return tuple(outs)

    def _format_output(self, x, grid):
        patches = x[:, self.num_fixed_tokens:]
        if self.out_type == 'cls_token':
            return x[:, 0]
        if self.out_type == 'raw':
            return patches
        if self.out_type == 'avg_featmap':
            return patches.mean(1)
        return patches.transpose(1, 2).reshape(x.shape[0], -1, *grid)
