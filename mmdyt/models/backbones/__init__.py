from .base import DyTBackbone
from .checkpoint import (convert_state_dict, load_vit_checkpoint, read_checkpoint,
                         upgrade_legacy_keys)
from .dyt_swin import DyTSwinBlock, DyTSwinTransformer
from .dyt_vit import ARCHS, DyTBlock, DyTVisionTransformer
from .frame_vit import FrameDyTVisionTransformer
from .swin_checkpoint import convert_swin_state_dict, load_swin_checkpoint

__all__ = [
    'ARCHS', 'DyTBackbone', 'DyTBlock', 'DyTVisionTransformer', 'FrameDyTVisionTransformer',
    'DyTSwinBlock', 'DyTSwinTransformer', 'convert_swin_state_dict', 'load_swin_checkpoint',
    'convert_state_dict', 'load_vit_checkpoint', 'read_checkpoint', 'upgrade_legacy_keys'
]
