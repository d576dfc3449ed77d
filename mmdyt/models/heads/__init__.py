"""Toolbox-neutral heads: the early-exit heads of Dyn-Adapter."""
from .early_exit import ExitHead, balanced_head_specs
from .video_exit import VideoExitHead

__all__ = ['ExitHead', 'VideoExitHead', 'balanced_head_specs']
