"""Data transforms that turn bad input into an error naming the file:
label maps outside the class range (mmseg pipelines) and unreadable videos
(mmaction2 pipelines); and RandAugment alike on every frame of a clip
(mmaction2 pipelines, mmpretrain's ops). Each registers in its toolbox's
``TRANSFORMS`` when its module is imported, which imports the toolbox; so
they are not imported here: :mod:`mmdyt.registry` registers their names
lazily, and ``from mmdyt.datasets.transforms import CheckLabelRange`` imports
the module on first access."""
import importlib

#: name -> its module (relative to this package)
_MODULES = {
    'CheckLabelRange': 'label_range',
    'ClipRandAugment': 'video_augment',
    'CheckedDecordDecode': 'video_io',
    'CheckedDecordInit': 'video_io',
}

__all__ = sorted(_MODULES)


def __getattr__(name):
    if name in _MODULES:
        return getattr(importlib.import_module(f'.{_MODULES[name]}', __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
