"""Work-arounds for upstream problems of the OpenMMLab 2.x stack.

:func:`apply_compat_fixes` runs every fix once (``import mmdyt`` calls it).
Each fix is a no-op where its upstream problem is absent. A fix can be
skipped by name, through the ``skip`` argument or the comma-separated
``MMDYT_COMPAT_SKIP`` environment variable (used by the tests to show the
problem each fix solves). See ``docs/compat.md``.
"""
import ast
import importlib
import importlib.util
import os
import os.path as osp
import sys
import types

MMCV_FULL_HINT = ('needs the compiled ops of full mmcv, but mmcv-lite is '
                  'installed. Install full mmcv 2.1.0 built from source: '
                  '`pip install "setuptools<81" wheel; MMCV_WITH_OPS=1 pip install '
                  '--no-build-isolation mmcv==2.1.0` (about 20 minutes on 2 cores, '
                  'see README.md).')

_applied = set()


def _placeholder(name, message):
    """A class named ``name`` whose construction raises ``ImportError(message)``.

    Being a class, it also works where callers only test ``isinstance``.
    """

    def __new__(cls, *args, **kwargs):
        raise ImportError(message)

    return type(name, (), {'__new__': __new__, '__doc__': message})


class _MmcvOpsStandIn(types.ModuleType):
    """``mmcv.ops`` for mmcv-lite: pure-PyTorch ops work, compiled ones raise.

    Its ``__path__`` is the real ``mmcv/ops`` folder, so a name is resolved
    lazily by importing the real submodule that defines it; a submodule that
    fails to import (it needs ``mmcv._ext``) yields a placeholder that
    raises on use.
    """

    def __init__(self, ops_dir):
        super().__init__('mmcv.ops', self.__doc__)
        self.__path__ = [ops_dir]
        self.__file__ = osp.join(ops_dir, '__init__.py')
        self._sources = _mmcv_ops_exports(self.__file__)
        self.__all__ = sorted(self._sources)

    def bind_shadowed_names(self):
        """Resolve names equal to their submodule's name (``point_sample``).

        Importing a submodule sets it as an attribute of its package, which
        would hide the op of the same name; resolving these now, once the
        stand-in is in ``sys.modules``, keeps the op as the attribute.
        """
        for name, (submodule, _) in self._sources.items():
            if name == submodule:
                getattr(self, name)

    def __getattr__(self, name):
        sources = self.__dict__.get('_sources', {})
        if name.startswith('__') or name not in sources:
            raise AttributeError(f"module 'mmcv.ops' has no attribute '{name}'")
        submodule, attr = sources[name]
        try:
            value = getattr(importlib.import_module(f'mmcv.ops.{submodule}'), attr)
        except ImportError as e:
            reason = MMCV_FULL_HINT if e.name == 'mmcv._ext' else f'cannot be imported: {e}'
            value = _placeholder(name, f'mmcv.ops.{name} {reason}')
        setattr(self, name, value)
        return value


def _mmcv_ops_exports(init_file):
    """Map each name ``mmcv/ops/__init__.py`` exports to (submodule, name)."""
    with open(init_file) as f:
        tree = ast.parse(f.read())
    return {
        alias.asname or alias.name: (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        for alias in node.names
    }


def fix_mmcv_ops():
    """Make ``import mmseg.models`` work with mmcv-lite.

    mmseg 1.2.2 imports ``mmcv.ops`` at import time (``utils/mask_classification.py``,
    ``models/utils/point_sample.py``, ``models/losses/focal_loss.py``,
    ``decode_heads/san_head.py``), which needs ``mmcv._ext``
    (open-mmlab/mmsegmentation#871, #3563). When, and only
    when, ``import mmcv.ops`` fails for that reason, install
    :class:`_MmcvOpsStandIn` as ``mmcv.ops``.
    """
    if 'mmcv.ops' in sys.modules or importlib.util.find_spec('mmcv') is None:
        return
    try:
        importlib.import_module('mmcv.ops')
        return
    except ImportError as e:
        if e.name != 'mmcv._ext':
            return
    import mmcv
    ops_dir = osp.join(osp.dirname(mmcv.__file__), 'ops')
    sys.modules['mmcv.ops'] = mmcv.ops = _MmcvOpsStandIn(ops_dir)
    mmcv.ops.bind_shadowed_names()


def fix_mmaction_drn():
    """Make ``import mmaction.models`` work with the mmaction2 1.2.0 wheel.

    The wheel lacks ``mmaction/models/localizers/drn`` while
    ``localizers/__init__.py`` imports ``.drn.drn.DRN``
    (open-mmlab/mmaction2#2714). When that folder is missing, provide the
    modules with a ``DRN`` registered in mmaction's ``MODELS`` that raises a
    clear error when built.
    """
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        return
    localizers = osp.join(spec.submodule_search_locations[0], 'models', 'localizers')
    if not osp.isdir(localizers) or osp.isdir(osp.join(localizers, 'drn')):
        return
    name = 'mmaction.models.localizers.drn'
    if name in sys.modules:
        return
    from mmaction.registry import MODELS
    hint = ('DRN is unavailable: the mmaction2 1.2.0 wheel does not ship mmaction/models/localizers/drn '
            '(open-mmlab/mmaction2#2714); install mmaction2 from source to use DRN.')
    drn_cls = _placeholder('DRN', hint)
    MODELS.register_module(name='DRN', module=drn_cls, force=True)
    package = types.ModuleType(name, hint)
    package.__path__ = []
    module = types.ModuleType(f'{name}.drn', hint)
    module.DRN = drn_cls
    package.drn = module
    sys.modules[name] = package
    sys.modules[f'{name}.drn'] = module


def _history_buffer_getattr(obj, name):
    """``getattr`` restricted to the statistics methods of ``HistoryBuffer``.

    A pickled ``HistoryBuffer`` stores its ``statistics_methods`` as
    ``getattr(HistoryBuffer, 'mean')`` etc.; nothing else may be looked up.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    value = obj.__dict__.get(name) if obj is HistoryBuffer else None
    if name.startswith('_') or not isinstance(value, types.FunctionType):
        import pickle
        raise pickle.UnpicklingError(
            f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')
    return value


def fix_checkpoint_safe_globals():
    """Let mmengine 0.10.7 resume on torch >= 2.6 with ``weights_only=True``.

    mmengine calls ``torch.load`` without ``weights_only``
    (open-mmlab/mmengine#1655, #1650), and torch >= 2.6 defaults it to ``True``,
    which refuses the numpy arrays/scalars and ``HistoryBuffer`` objects of
    the ``message_hub`` and ``meta`` entries. Allow-list exactly those, so a
    checkpoint still cannot run code.
    """
    import torch.serialization
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return
    if importlib.util.find_spec('mmengine') is None:
        return
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    multiarray = importlib.import_module(
        'numpy._core.multiarray' if hasattr(np, '_core') else 'numpy.core.multiarray')
    safe = [np.ndarray, np.dtype, HistoryBuffer,
            (_history_buffer_getattr, 'builtins.getattr')]
    safe += [type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
        np.uint32, np.uint64, np.float16, np.float32, np.float64,
        np.complex64, np.complex128)]
    for func in (multiarray._reconstruct, multiarray.scalar):
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            safe.append((func, f'{module}.{func.__name__}'))
    torch.serialization.add_safe_globals(safe)


FIXES = {
    'mmcv_ops': fix_mmcv_ops,
    'mmaction_drn': fix_mmaction_drn,
    'checkpoint_safe_globals': fix_checkpoint_safe_globals,
}


def apply_compat_fixes(skip=()):
    """Apply every fix of :data:`FIXES` once; idempotent.

    Args:
        skip (Iterable[str]): names of fixes not to apply, added to those in
            the ``MMDYT_COMPAT_SKIP`` environment variable.
    """
    skipped = set(skip) | set(filter(None, os.environ.get('MMDYT_COMPAT_SKIP', '').split(',')))
    unknown = skipped - set(FIXES)
    if unknown:
        raise KeyError(f'unknown compat fixes {sorted(unknown)}; known: {sorted(FIXES)}')
    for name, fix in FIXES.items():
        if name not in skipped and name not in _applied:
            fix()
            _applied.add(name)
