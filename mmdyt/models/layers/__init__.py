"""The block vocabulary every backbone and token reduction builds on:
attention, MLP, adapters, the token dispatcher and the dispatched part."""
from .adapter import Adapter, MoEAdapter, build_adapter
from .attention import Attention, relative_position_index
from .attention_pool import AttentionPool
from .cross_attention import CrossAttentionQuery
from .dispatched_part import (DISPATCH_TABLE, TOKEN_MIXING_PARTS, PackedTokens, PartOutcome,
                              build_parts, capacity_tokens, dispatched_part, drop_path,
                              with_adapter)
from .dispatcher import TokenDispatcher, all_tokens_active, gumbel_sigmoid, straight_through
from .layer_scale import LayerScale, build_layer_scale
from .mlp import ACTIVATIONS, Mlp, QuickGELU, SwiGLU, activation_layer
from .pos_embed import resize_pos_embed
from .rotary import RotaryEmbedding2d, rotary_flops, rotate

__all__ = [
    'Adapter', 'MoEAdapter', 'build_adapter', 'Attention', 'relative_position_index',
    'AttentionPool', 'ACTIVATIONS', 'QuickGELU', 'activation_layer',
    'CrossAttentionQuery', 'DISPATCH_TABLE', 'TOKEN_MIXING_PARTS', 'PackedTokens', 'PartOutcome',
    'build_parts', 'capacity_tokens', 'dispatched_part', 'drop_path', 'with_adapter',
    'TokenDispatcher', 'all_tokens_active', 'gumbel_sigmoid', 'straight_through', 'LayerScale',
    'build_layer_scale', 'Mlp', 'SwiGLU', 'RotaryEmbedding2d', 'rotary_flops', 'rotate',
    'resize_pos_embed'
]
