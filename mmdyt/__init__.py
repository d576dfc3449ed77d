"""mmdyt: Dynamic Tuning (DyT) and Dyn-Adapter for the OpenMMLab 2.x toolboxes.

Importing ``mmdyt`` applies the compatibility fixes of :mod:`mmdyt.compat` and
registers every module: the toolbox-neutral core in mmengine's root
registries, the task glue in the registries of whichever toolboxes
(mmpretrain, mmseg, mmaction2) are installed.
"""
from .compat import apply_compat_fixes

apply_compat_fixes()

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .api import DyTModel, get_dyt_model  # noqa: E402,F401
from .version import __version__, version_info  # noqa: E402,F401
