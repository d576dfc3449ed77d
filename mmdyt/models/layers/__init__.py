from .adapter import Adapter, MoEAdapter, build_adapter
from .cross_attention import CrossAttentionQuery
from .dispatched import PackedTokens, capacity_tokens, dispatched_part, drop_path, with_adapter
from .dispatcher import TokenDispatcher, all_tokens_active, gumbel_sigmoid, straight_through
from .pos_embed import resize_pos_embed

__all__ = [
    'Adapter', 'MoEAdapter', 'build_adapter', 'CrossAttentionQuery', 'PackedTokens',
    'capacity_tokens', 'dispatched_part', 'drop_path', 'with_adapter', 'TokenDispatcher',
    'all_tokens_active', 'gumbel_sigmoid', 'straight_through', 'resize_pos_embed'
]
