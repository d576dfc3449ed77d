"""Data transforms that turn bad input into an error naming the file:
label maps outside the class range (mmseg pipelines) and unreadable videos
(mmaction2 pipelines); and RandAugment alike on every frame of a clip
(mmaction2 pipelines, mmpretrain's ops). Each registers in its toolbox's
``TRANSFORMS`` and is imported only when that toolbox is installed."""
import importlib.util

__all__ = []

if importlib.util.find_spec('mmseg') is not None:
    from .label_range import CheckLabelRange  # noqa: F401
    __all__.append('CheckLabelRange')

if importlib.util.find_spec('mmaction') is not None:
    from .video_augment import ClipRandAugment  # noqa: F401
    from .video_io import CheckedDecordDecode, CheckedDecordInit  # noqa: F401
    __all__ += ['CheckedDecordDecode', 'CheckedDecordInit', 'ClipRandAugment']
