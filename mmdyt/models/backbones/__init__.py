from .base import DyTBackbone
from .checkpoint import (convert_state_dict, load_vit_checkpoint, read_checkpoint,
                         upgrade_legacy_keys)
from .dyt_vit import ARCHS, DISPATCH_TABLE, DyTBlock, DyTVisionTransformer
from .frame_vit import FrameDyTVisionTransformer

__all__ = [
    'ARCHS', 'DISPATCH_TABLE', 'DyTBackbone', 'DyTBlock', 'DyTVisionTransformer', 'FrameDyTVisionTransformer',
    'convert_state_dict', 'load_vit_checkpoint', 'read_checkpoint', 'upgrade_legacy_keys'
]
