"""Video recognition through mmaction2: the cross-attention query head and
the recognizer (the per-frame backbone is core:
:class:`mmdyt.models.backbones.FrameDyTVisionTransformer`; checked decord
loading is in :mod:`mmdyt.datasets.transforms`)."""
from .early_exit import EarlyExitRecognizer3D
from .head import CrossAttentionHead
from .recognizer import DyTRecognizer3D

__all__ = ['CrossAttentionHead', 'DyTRecognizer3D', 'EarlyExitRecognizer3D']
