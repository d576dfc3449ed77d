"""Patch functions that put PETL modules into a :class:`DyTVisionTransformer`
or :class:`DyTSwinTransformer` in place (ToMe / HF-PEFT style), and the
helpers that act on them afterwards.

``apply_petl(backbone, dict(type='lora', rank=8, targets=['q', 'v']))`` is
what the backbone's ``petl`` argument calls. Every type wraps the targeted
``nn.Linear`` layers of every block the same way (:class:`PETLLinear`);
LoRA also adapts the q / k / v output slices of the fused ``qkv``
(:class:`SlicedLoRALinear`).
"""
import torch.nn as nn

from .base import PETLLinear
from .lora import LoRALinear, SlicedLoRALinear
from .rep_adapter import RepAdapterLinear
from .sequential_adapter import SequentialAdapterLinear

#: Target name -> (sub-layer, attribute) of a ViT or Swin block (their layers
#: have the same names; a Swin's ``backbone.blocks`` lists every stage's).
TARGET_LAYERS = {
    'qkv': ('attn', 'qkv'),
    'proj': ('attn', 'proj'),
    'fc1': ('mlp', 'fc1'),
    'fc2': ('mlp', 'fc2'),
}

#: Slice target name -> its chunk of the fused ``qkv`` output (LoRA only).
QKV_SLICES = {'q': 0, 'k': 1, 'v': 2}

#: PETL type -> (wrapper class, default targets, its keyword arguments).
#: LoRA's ``targets=['q', 'v']`` are LoRA's and Dyn-Adapter's form (separate
#: q and v updates, the Dyn-LoRA configs' setting); its default ``qkv`` is one
#: update of the fused layer. The Houlsby adapter defaults to one adapter per
#: block after ``mlp.fc2`` (Dyn-Adapter's Adapter baseline, 0.16 M on ViT-B);
#: ``targets=['proj', 'fc2']`` is Houlsby's original two per block.
PETL_TYPES = {
    'lora': (LoRALinear, ('qkv', ), ('rank', 'alpha', 'dropout')),
    'rep_adapter': (RepAdapterLinear, ('qkv', 'fc1'), ('dim', 'groups', 'scale', 'dropout')),
    'houlsby': (SequentialAdapterLinear, ('fc2', ), ('dim', 'scale', 'dropout')),
}


def wrap_linears(backbone, wrapper, targets, **kwargs):
    """Wrap ``targets`` (names of :data:`TARGET_LAYERS`) of every block with
    ``wrapper(layer, **kwargs)``."""
    unknown = set(targets) - set(TARGET_LAYERS)
    if unknown or not targets:
        raise ValueError('petl targets must be a non-empty subset of '
                         f'{sorted(TARGET_LAYERS)} (and q, k, v for LoRA), got {list(targets)}')
    for block in backbone.blocks:
        for target in targets:
            part, name = TARGET_LAYERS[target]
            parent = getattr(block, part)
            setattr(parent, name, wrapper(getattr(parent, name), **kwargs))
    return backbone


def apply_petl(backbone, cfg):
    """Apply one PETL config (``dict(type=..., targets=..., **kwargs)``) or a
    list of them.

    Raises:
        ValueError: unknown ``type``, target or argument, naming the known ones.
    """
    for item in (cfg if isinstance(cfg, (list, tuple)) else [cfg]):
        item = dict(item)
        kind = item.pop('type', None)
        if kind not in PETL_TYPES:
            raise ValueError(f'petl type must be one of {sorted(PETL_TYPES)}, got {kind!r}')
        wrapper, default_targets, arguments = PETL_TYPES[kind]
        targets = item.pop('targets', default_targets)
        unknown = set(item) - set(arguments)
        if unknown:
            raise ValueError(f'petl type {kind!r} takes {sorted(arguments)} and targets, '
                             f'got {sorted(unknown)}')
        slices = [QKV_SLICES[t] for t in targets if t in QKV_SLICES]
        if slices and (kind != 'lora' or 'qkv' in targets):
            raise ValueError(f'the q / k / v slices of qkv are LoRA targets, not with {kind!r} '
                             f'or together with qkv itself, got {list(targets)}')
        if slices:
            wrap_linears(backbone, SlicedLoRALinear, ['qkv'], slices=slices, num_chunks=3,
                         **item)
        targets = [t for t in targets if t not in QKV_SLICES]
        if targets or not slices:
            wrap_linears(backbone, wrapper, targets, **item)
    return backbone


def mergeable_modules(model):
    return [m for m in model.modules() if isinstance(m, PETLLinear) and m.mergeable]


def merge_petl(model):
    """Re-parameterise every mergeable PETL module of ``model`` (LoRA and
    RepAdapter) into its linear layer, for inference. Returns the number
    merged."""
    modules = mergeable_modules(model)
    for module in modules:
        module.merge()
    return len(modules)


def unmerge_petl(model):
    """Undo :func:`merge_petl`. Returns the number unmerged."""
    modules = mergeable_modules(model)
    for module in modules:
        module.unmerge()
    return len(modules)


def set_dropout(module, p):
    """Set the rate of every ``nn.Dropout`` inside ``module`` (in a ViT block
    these all belong to PETL modules: the ViT itself has no dropout)."""
    for layer in module.modules():
        if isinstance(layer, nn.Dropout):
            layer.p = p
