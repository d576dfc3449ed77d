"""Video recognition through mmaction2: the cross-attention query head, the
recognizer and checked decord loading (the per-frame backbone is core:
:class:`mmdyt.models.backbones.FrameDyTVisionTransformer`)."""
from .head import CrossAttentionHead
from .recognizer import DyTRecognizer3D
from .video_io import CheckedDecordDecode, CheckedDecordInit

__all__ = ['CrossAttentionHead', 'DyTRecognizer3D', 'CheckedDecordInit', 'CheckedDecordDecode']
