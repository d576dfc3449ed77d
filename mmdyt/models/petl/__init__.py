"""Parameter-efficient tuning modules patched into the shared backbone:
RepAdapter (re-parameterisable), a Houlsby sequential adapter; LoRA is the
backbone's ``lora_rank``. New trainable parameters are named ``petl_*`` so
that a frozen :class:`DyTVisionTransformer` keeps them trainable."""
from .apply import (PETL_TYPES, apply_petl, apply_rep_adapter,
                    apply_sequential_adapter, merge_petl, petl_flops, set_dropout)
from .rep_adapter import GroupLinear, RepAdapterLinear
from .sequential_adapter import SequentialAdapterLinear

__all__ = [
    'PETL_TYPES', 'apply_petl', 'apply_rep_adapter', 'apply_sequential_adapter',
    'merge_petl', 'petl_flops', 'set_dropout', 'GroupLinear', 'RepAdapterLinear',
    'SequentialAdapterLinear'
]
