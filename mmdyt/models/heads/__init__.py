"""Toolbox-neutral heads: the early-exit heads of Dyn-Adapter."""
from .early_exit import ExitHead, balanced_head_specs

__all__ = ['ExitHead', 'balanced_head_specs']
