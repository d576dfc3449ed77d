from .adapter import Adapter, MoEAdapter, build_adapter
from .dispatcher import TokenDispatcher, gumbel_sigmoid, straight_through
from .lora import LoRALinear
from .onednn_linear import (linear, onednn_inner_product, onednn_linear_enabled,
                            set_onednn_linear, uses_onednn)
from .pos_embed import resize_pos_embed

__all__ = [
    'Adapter', 'MoEAdapter', 'build_adapter', 'TokenDispatcher',
    'gumbel_sigmoid', 'straight_through', 'LoRALinear', 'resize_pos_embed',
    'linear', 'onednn_inner_product', 'onednn_linear_enabled', 'set_onednn_linear',
    'uses_onednn'
]
