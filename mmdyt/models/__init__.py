"""Models: the toolbox-neutral core (layers, backbones, heads, losses) and the
thin task glue (classifiers, segmentors, recognizers), which is imported only
when its toolbox is installed."""
import importlib
import importlib.util

from . import backbones, heads, layers, losses  # noqa: F401

_TASK_GLUE = {
    'mmpretrain': 'classifiers',
    'mmseg': 'segmentors',
    'mmaction': 'recognizers',
}

for _toolbox, _module in _TASK_GLUE.items():
    if importlib.util.find_spec(_toolbox) is not None:
        importlib.import_module(f'{__name__}.{_module}')
