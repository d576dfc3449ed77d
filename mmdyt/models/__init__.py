"""Models: the toolbox-neutral core (layers, backbones, heads, losses) and the
thin task glue (classifiers for mmpretrain, segmentors for mmseg, recognizers
for mmaction2). The glue imports its toolbox, so it is not imported here:
:mod:`mmdyt.registry` registers its names lazily, and ``mmdyt.models.classifiers``
etc. are imported on first access (or ``import mmdyt.models.classifiers``)."""
import importlib

from . import backbones, heads, layers, losses  # noqa: F401

#: glue subpackage -> the toolbox it imports
TASK_GLUE = {'classifiers': 'mmpretrain', 'segmentors': 'mmseg', 'recognizers': 'mmaction'}


def __getattr__(name):
    if name in TASK_GLUE:
        return importlib.import_module(f'{__name__}.{name}')
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
