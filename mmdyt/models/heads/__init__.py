"""Toolbox-neutral heads and head layers."""
from .cross_attention import CrossAttentionQuery

__all__ = ['CrossAttentionQuery']
