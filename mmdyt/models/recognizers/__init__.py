"""Video recognition through mmaction2: the per-frame DyT backbone, the
cross-attention query head, the recognizer and checked decord loading."""
from .frame_vit import FrameDyTVisionTransformer
from .head import CrossAttentionHead
from .recognizer import DyTRecognizer3D
from .video_io import CheckedDecordDecode, CheckedDecordInit

__all__ = ['FrameDyTVisionTransformer', 'CrossAttentionHead', 'DyTRecognizer3D',
           'CheckedDecordInit', 'CheckedDecordDecode']
