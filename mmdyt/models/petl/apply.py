"""Patch functions that put PETL modules into a :class:`DyTVisionTransformer`
in place (ToMe / HF-PEFT style), and the helpers that act on them afterwards.

``apply_petl(backbone, dict(type='rep_adapter', dim=8))`` is what the
backbone's ``petl`` argument calls; LoRA on ``qkv`` is the backbone's own
``lora_rank`` argument.
"""
import torch.nn as nn

from ..layers import LoRALinear
from .rep_adapter import RepAdapterLinear
from .sequential_adapter import SequentialAdapterLinear

PETL_MODULES = (RepAdapterLinear, SequentialAdapterLinear)


def apply_rep_adapter(backbone, dim=8, groups=2, scale=1.0, dropout=0.0):
    """RepAdapter before ``attn.qkv`` and ``mlp.fc1`` of every block."""
    for block in backbone.blocks:
        block.attn.qkv = RepAdapterLinear(block.attn.qkv, dim, groups, scale, dropout)
        block.mlp.fc1 = RepAdapterLinear(block.mlp.fc1, dim, groups, scale, dropout)
    return backbone


def apply_sequential_adapter(backbone, dim=8, scale=1.0, dropout=0.1):
    """Houlsby adapter after ``attn.proj`` and ``mlp.fc2`` of every block."""
    for block in backbone.blocks:
        block.attn.proj = SequentialAdapterLinear(block.attn.proj, dim, scale, dropout)
        block.mlp.fc2 = SequentialAdapterLinear(block.mlp.fc2, dim, scale, dropout)
    return backbone


PETL_TYPES = {
    'rep_adapter': apply_rep_adapter,
    'houlsby': apply_sequential_adapter,
}


def apply_petl(backbone, cfg):
    """Apply one PETL config (``dict(type=..., **kwargs)``) or a list of them.

    Raises:
        ValueError: unknown ``type``, naming the known ones.
    """
    for item in (cfg if isinstance(cfg, (list, tuple)) else [cfg]):
        item = dict(item)
        kind = item.pop('type', None)
        if kind not in PETL_TYPES:
            raise ValueError(f'petl type must be one of {sorted(PETL_TYPES)}, got {kind!r}')
        PETL_TYPES[kind](backbone, **item)
    return backbone


def merge_petl(model):
    """Re-parameterise every mergeable PETL module of ``model`` (LoRA and
    RepAdapter) into its linear layer, for inference. Returns the number
    merged."""
    mergeable = [m for m in model.modules() if isinstance(m, (LoRALinear, RepAdapterLinear))]
    for module in mergeable:
        module.merge()
    return len(mergeable)


def petl_flops(block, num_tokens):
    """Multiply-adds of this package's modules in one block in its last
    forward, which ``DyTBlock.flops`` adds to its own count: (B,) tensor or
    int. Modules inside ``attn`` / ``mlp`` run on
    the tokens that part computed (all tokens without DyT dispatch)."""
    attn_tokens, mlp_tokens = block.active_counts(num_tokens)
    total = 0
    for name, module in block.named_modules():
        if isinstance(module, PETL_MODULES):
            total = total + module.flops(attn_tokens if name.startswith('attn.') else mlp_tokens)
    return total


def set_dropout(module, p):
    """Set the rate of every ``nn.Dropout`` inside ``module`` (in a ViT block
    these all belong to PETL modules: the ViT itself has no dropout)."""
    for layer in module.modules():
        if isinstance(layer, nn.Dropout):
            layer.p = p
