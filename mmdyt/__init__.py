"""mmdyt: Dynamic Tuning (DyT) and Dyn-Adapter for the OpenMMLab 2.x toolboxes.

Importing ``mmdyt`` imports no toolbox (mmpretrain, mmseg, mmaction2) and no
timm. It applies the compatibility fixes of :mod:`mmdyt.compat` (a toolbox's
fix right after that toolbox is imported), registers the toolbox-neutral core
(backbones, layers, heads, losses, hooks, metrics, datasets) in mmengine's root
registries, and registers the task glue lazily (:mod:`mmdyt.registry`): its
module, and its toolbox, are imported when a config first builds one of its
names.
"""
from .compat import apply_compat_fixes

apply_compat_fixes()

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .api import DyTModel, get_dyt_model  # noqa: E402,F401
from .registry import register_config_scope, register_task_glue  # noqa: E402
from .version import __version__, version_info  # noqa: E402,F401

register_config_scope()
register_task_glue()
