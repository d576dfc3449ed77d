"""Work-arounds for upstream problems of the OpenMMLab 2.x stack.

:func:`apply_compat_fixes` runs every fix once (``import mmdyt`` calls it).
Each fix of :data:`FIXES` declares the upstream versions it targets, read
from the installed distributions' metadata without importing them; outside
them it is skipped, and inside them it is still a no-op where its upstream
problem is absent. A fix of a toolbox (``Fix.after_import``) is applied right
after the module it patches is first imported (at once if it already is),
through a ``sys.meta_path`` hook, so that ``import mmdyt`` imports no toolbox;
until then it is listed by :func:`pending_fixes`. Applied fixes are logged once
at INFO level on the ``mmdyt`` logger and listed by :func:`applied_fixes`;
skipped ones are logged at DEBUG level and listed by :func:`skipped_fixes`. A
fix can be skipped by name, through the ``skip`` argument or the
comma-separated ``MMDYT_COMPAT_SKIP`` environment variable (used by the tests
to show the problem each fix solves). See ``docs/compat.md``.
"""
import ast
import functools
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import os.path as osp
import sys
import types
from typing import Callable, Dict, NamedTuple, Optional, Tuple

from packaging.specifiers import SpecifierSet

MMCV_FULL_HINT = ('needs the compiled ops of full mmcv, but mmcv-lite is '
                  'installed. Install full mmcv 2.1.0 built from source: '
                  '`pip install "setuptools<81" wheel; MMCV_WITH_OPS=1 pip install '
                  '--no-build-isolation mmcv==2.1.0` (about 20 minutes on 2 cores, '
                  'see README.md).')

logger = logging.getLogger('mmdyt')
_applied = {}
_skipped = {}
_pending = {}


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
    :class:`_MmcvOpsStandIn` as ``mmcv.ops``. Return whether it did.
    """
    if 'mmcv.ops' in sys.modules or importlib.util.find_spec('mmcv') is None:
        return False
    try:
        importlib.import_module('mmcv.ops')
        return False
    except ImportError as e:
        if e.name != 'mmcv._ext':
            return False
    import mmcv
    ops_dir = osp.join(osp.dirname(mmcv.__file__), 'ops')
    sys.modules['mmcv.ops'] = mmcv.ops = _MmcvOpsStandIn(ops_dir)
    mmcv.ops.bind_shadowed_names()
    return True


def fix_mmaction_drn():
    """Make ``import mmaction.models`` work with the mmaction2 1.2.0 wheel.

    The wheel lacks ``mmaction/models/localizers/drn`` while
    ``localizers/__init__.py`` imports ``.drn.drn.DRN``
    (open-mmlab/mmaction2#2714). When that folder is missing, provide the
    modules with a ``DRN`` registered in mmaction's ``MODELS`` that raises a
    clear error when built. Return whether it did.
    """
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        return False
    localizers = osp.join(spec.submodule_search_locations[0], 'models', 'localizers')
    if not osp.isdir(localizers) or osp.isdir(osp.join(localizers, 'drn')):
        return False
    name = 'mmaction.models.localizers.drn'
    if name in sys.modules:
        return False
    from mmaction.registry import MODELS
    hint = ('DRN is unavailable: the mmaction2 1.2.0 wheel does not ship '
            'mmaction/models/localizers/drn (open-mmlab/mmaction2#2714); install mmaction2 '
            'from source to use DRN.')
    drn_cls = _placeholder('DRN', hint)
    MODELS.register_module(name='DRN', module=drn_cls, force=True)
    package = types.ModuleType(name, hint)
    package.__path__ = []
    module = types.ModuleType(f'{name}.drn', hint)
    module.DRN = drn_cls
    package.drn = module
    sys.modules[name] = package
    sys.modules[f'{name}.drn'] = module
    return True


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
    checkpoint still cannot run code. Return whether it did.
    """
    import torch.serialization
    if not hasattr(torch.serialization, 'add_safe_globals'):
        return False
    if importlib.util.find_spec('mmengine') is None:
        return False
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
    return True


def _list_line(dataset, img_path):
    """``'ann_file:line'`` of ``img_path`` in the annotation list of an
    mmpretrain ``CustomDataset`` (``path [label]`` per line), or None (no
    list, or the path is not in it)."""
    from mmengine.fileio import get_file_backend, list_from_file
    from mmpretrain.datasets import CustomDataset
    if not isinstance(dataset, CustomDataset) or not dataset.ann_file:
        return None
    backend = get_file_backend(dataset.img_prefix, enable_singleton=True)
    for number, line in enumerate(list_from_file(dataset.ann_file), 1):
        name = line.strip().rsplit(' ', 1)[0] if dataset.with_label else line.strip()
        if backend.join_path(dataset.img_prefix, name) == img_path:
            return f'{dataset.ann_file}:{number}'
    return None


def _naming_bad_images(prepare_data):
    """``prepare_data`` of mmpretrain's ``BaseDataset``, raising a
    ``ValueError`` that names an empty or undecodable image file and, for a
    ``CustomDataset`` list, its ``file:line``."""

    @functools.wraps(prepare_data)
    def wrapper(self, idx):
        try:
            return prepare_data(self, idx)
        except Exception as error:
            from .datasets.base import image_problem
            path = self.get_data_info(idx).get('img_path')
            problem = image_problem(path)
            if problem is None:
                raise
            where = _list_line(self, path)
            raise ValueError(f'{where + ": " if where else ""}image {path} {problem}') from error

    wrapper.names_bad_images = True
    return wrapper


def fix_mmpretrain_image_errors():
    """Name the file of an empty or undecodable image in mmpretrain datasets.

    mmpretrain 1.2.0's datasets (``CustomDataset``, ``ImageNet`` ...) load
    images with mmcv's ``LoadImageFromFile``: an empty file fails inside
    OpenCV (``!buf.empty()``) without a name, an undecodable one with mmcv's
    ``assert``. Wrap ``mmpretrain.datasets.BaseDataset.prepare_data`` so
    that both raise a ``ValueError`` naming the image and, for an annotation
    list, its ``file:line``; other errors pass unchanged. Return whether it
    did.
    """
    if importlib.util.find_spec('mmpretrain') is None:
        return False
    from mmpretrain.datasets import BaseDataset
    if getattr(BaseDataset.prepare_data, 'names_bad_images', False):
        return False
    BaseDataset.prepare_data = _naming_bad_images(BaseDataset.prepare_data)
    return True


class Fix(NamedTuple):
    """A work-around and the upstream versions it targets.

    ``targets`` maps alternative distribution names (the first installed one
    counts) to the version specifier it must satisfy; all must hold.
    ``apply()`` returns whether it patched anything. ``after_import`` names
    the module whose first import the fix waits for (None: applied at once).
    """

    apply: Callable[[], bool]
    targets: Dict[Tuple[str, ...], str]
    reason: str
    after_import: Optional[str] = None


FIXES = {
    'mmcv_ops': Fix(
        fix_mmcv_ops, {('mmcv-lite', 'mmcv'): '>=2.0,<2.2'},
        'mmseg 1.2.2 imports mmcv.ops, which needs the compiled mmcv._ext '
        'that mmcv-lite lacks (open-mmlab/mmsegmentation#871, #3563)',
        after_import='mmseg'),  # mmseg/__init__.py does not import mmcv.ops, its modules do
    'mmaction_drn': Fix(
        fix_mmaction_drn, {('mmaction2',): '==1.2.0'},
        'the mmaction2 1.2.0 wheel lacks mmaction/models/localizers/drn '
        '(open-mmlab/mmaction2#2714)',
        after_import='mmaction'),  # before mmaction.models
    'checkpoint_safe_globals': Fix(
        fix_checkpoint_safe_globals,
        {('mmengine', 'mmengine-lite'): '<=0.10.7', ('torch',): '>=2.6'},
        'mmengine calls torch.load without weights_only, which torch >= 2.6 '
        'defaults to True (open-mmlab/mmengine#1655, #1650)'),
    'mmpretrain_image_errors': Fix(
        fix_mmpretrain_image_errors, {('mmpretrain',): '>=1.0,<=1.2.0'},
        "mmpretrain's datasets fail on an empty image inside OpenCV and on an "
        "undecodable one with mmcv's assert, without the file:line of the list",
        after_import='mmpretrain.datasets'),
}


def dist_version(name):
    """The installed version of distribution ``name``, or None; imports nothing."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_targets(fix):
    """Return ``(versions, why_not)`` for the installed versions of ``fix.targets``.

    ``versions`` maps each distribution found to its version; ``why_not`` is
    None when all of them are in range, else why the fix does not apply.
    """
    versions = {}
    for dists, spec in fix.targets.items():
        found = next(((d, v) for d in dists for v in [dist_version(d)] if v), None)
        if found is None:
            return versions, f'{" / ".join(dists)} is not installed'
        dist, version = found
        versions[dist] = version
        if not SpecifierSet(spec).contains(version, prereleases=True):
            return versions, f'{dist} {version} is outside the targeted {dist}{spec}'
    return versions, None


def applied_fixes():
    """``{name: {'versions': {distribution: version}, 'reason': str}}`` of the applied fixes."""
    return {name: dict(info, versions=dict(info['versions'])) for name, info in _applied.items()}


def skipped_fixes():
    """``{name: why}`` of the fixes checked but not applied (not by ``skip``)."""
    return dict(_skipped)


def pending_fixes():
    """``{name: module}`` of the fixes in range that wait for the first import of ``module``."""
    return dict(_pending)


class _HookedLoader:
    """The loader of a module with a hook: runs ``after(module)`` once the
    real ``loader`` has executed it. The module's ``__loader__`` and
    ``__spec__.loader`` are the real loader."""

    def __init__(self, loader, after):
        self.loader = loader
        self.after = after

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        if getattr(module, '__loader__', None) is self:
            module.__loader__ = self.loader
        spec = getattr(module, '__spec__', None)
        if spec is not None and spec.loader is self:
            spec.loader = self.loader
        self.loader.exec_module(module)
        self.after(module)


class _PostImportHooks:
    """A ``sys.meta_path`` finder that runs callbacks right after a module is
    first imported (the fixes of :data:`FIXES` with ``after_import``). It
    finds nothing itself: it wraps the loader of the spec the other finders
    return, only for a module with a pending callback, and leaves
    ``sys.meta_path`` when none is left."""

    def __init__(self):
        self.callbacks = {}

    def add(self, module, callback):
        """Run ``callback()`` right after ``module`` is first imported."""
        self.callbacks.setdefault(module, []).append(callback)
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.callbacks:
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, 'find_spec', None) if finder is not self else None
            spec = find_spec(fullname, path, target) if find_spec is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, 'exec_module'):
            return None
        spec.loader = _HookedLoader(spec.loader, self._run)
        return spec

    def _run(self, module):
        callbacks = self.callbacks.pop(module.__name__, [])
        if not self.callbacks and self in sys.meta_path:
            sys.meta_path.remove(self)
        for callback in callbacks:
            callback()


_hooks = _PostImportHooks()


def _apply(name, versions):
    """Apply fix ``name`` (in range, not skipped), record and log the outcome."""
    _pending.pop(name, None)
    if name in _applied or name in _skipped:
        return
    fix = FIXES[name]
    if fix.apply():
        _applied[name] = dict(versions=versions, reason=fix.reason)
        found = ', '.join(f'{d} {v}' for d, v in versions.items())
        logger.info('mmdyt compat fix %s applied for %s: %s', name, found, fix.reason)
    else:
        _skip(name, 'its upstream problem is absent')


def _skip(name, why_not):
    _skipped[name] = why_not
    logger.debug('mmdyt compat fix %s skipped: %s', name, why_not)


def apply_compat_fixes(skip=()):
    """Apply every fix of :data:`FIXES` that targets the installed versions, once.

    A fix with ``after_import`` is applied right after that module is first
    imported (at once if it already is): until then it is pending. Idempotent:
    a fix is checked, and its outcome logged, only once.

    Args:
        skip (Iterable[str]): names of fixes not to apply, added to those in
            the ``MMDYT_COMPAT_SKIP`` environment variable.
    """
    excluded = set(skip) | set(filter(None, os.environ.get('MMDYT_COMPAT_SKIP', '').split(',')))
    unknown = excluded - set(FIXES)
    if unknown:
        raise KeyError(f'unknown compat fixes {sorted(unknown)}; known: {sorted(FIXES)}')
    for name, fix in FIXES.items():
        if name in excluded or name in _applied or name in _skipped or name in _pending:
            continue
        versions, why_not = check_targets(fix)
        if why_not is not None:
            _skip(name, why_not)
        elif fix.after_import is None or fix.after_import in sys.modules:
            _apply(name, versions)
        else:
            _pending[name] = fix.after_import
            _hooks.add(fix.after_import, functools.partial(_apply, name, versions))
            logger.debug('mmdyt compat fix %s waits for the import of %s', name,
                         fix.after_import)
