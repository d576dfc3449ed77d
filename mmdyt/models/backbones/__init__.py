from .checkpoint import convert_state_dict, load_vit_checkpoint, read_checkpoint
from .dyt_vit import ARCHS, DISPATCH_VARIANTS, DyTBlock, DyTVisionTransformer

__all__ = [
    'ARCHS', 'DISPATCH_VARIANTS', 'DyTBlock', 'DyTVisionTransformer',
    'convert_state_dict', 'load_vit_checkpoint', 'read_checkpoint'
]
