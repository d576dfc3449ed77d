"""Parameter-efficient tuning modules patched into the shared backbone, all
in one wrapping style (:class:`PETLLinear`): LoRA, RepAdapter
(re-parameterisable) and a Houlsby sequential adapter. New trainable
parameters are named ``lora_*`` / ``petl_*`` so that a frozen
:class:`DyTVisionTransformer` keeps them trainable."""
from .apply import (PETL_TYPES, QKV_SLICES, TARGET_LAYERS, apply_petl, merge_petl, set_dropout,
                    unmerge_petl, wrap_linears)
from .base import PETLLinear
from .lora import LoRALinear, SlicedLoRALinear
from .rep_adapter import GroupLinear, RepAdapterLinear
from .sequential_adapter import SequentialAdapterLinear

__all__ = [
    'PETL_TYPES', 'QKV_SLICES', 'TARGET_LAYERS', 'apply_petl', 'merge_petl', 'unmerge_petl',
    'set_dropout', 'wrap_linears', 'PETLLinear', 'LoRALinear', 'SlicedLoRALinear', 'GroupLinear',
    'RepAdapterLinear', 'SequentialAdapterLinear'
]
