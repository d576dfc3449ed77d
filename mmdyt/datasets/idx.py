"""MNIST-style IDX files (MNIST, Fashion-MNIST, KMNIST, ...), gzipped or not.

IDX format: 2 zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, one
big-endian uint32 per dimension, then the data, big-endian, row-major.
"""
import os.path as osp
import struct
import zlib
from typing import Optional, Sequence, Union

import numpy as np
from mmengine.registry import DATASETS

from .base import (DIGIT_CLASSES, ClsBaseDataset, check_labels, image_sample, open_maybe_gzip,
                   require_file, resolve, to_channels)

IDX_DTYPES = {
    0x08: '>u1',
    0x09: '>i1',
    0x0B: '>i2',
    0x0C: '>i4',
    0x0D: '>f4',
    0x0E: '>f8'
}

FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
                         'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
IDX_CLASSES = {'mnist': DIGIT_CLASSES, 'fashion-mnist': FASHION_MNIST_CLASSES}

# split -> file name stem of the MNIST-family releases
IDX_SPLIT_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')
}


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (gzip detected by its magic bytes) into an array.

    Raises:
        FileNotFoundError: no such file.
        ValueError: bad magic / type byte, a truncated header or data (the
            header's item count against what the file holds), trailing
            bytes, or a corrupt gzip stream; the message names the file.
    """
    require_file(path, 'IDX file')
    try:
        with open_maybe_gzip(path) as f:
            raw = f.read()
    except (EOFError, OSError, zlib.error) as e:
        raise ValueError(f'{path}: truncated or corrupt gzip stream ({e})') \
            from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f'{path}: not an IDX file (magic {raw[:4].hex()!r} '
                         'does not start with two zero bytes)')
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise ValueError(f'{path}: unknown IDX data type 0x{code:02x}')
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f'{path}: truncated IDX header ({ndim} dimensions '
                         f'need {header} bytes, the file has {len(raw)})')
    shape = struct.unpack(f'>{ndim}I', raw[4:header])
    dtype = np.dtype(IDX_DTYPES[code])
    item_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    expected = (shape[0] if ndim else 1) * item_bytes
    actual = len(raw) - header
    if actual < expected:
        n = shape[0] if ndim else 1
        raise ValueError(
            f'{path}: truncated IDX file: the header says {n} items of shape '
            f'{tuple(shape[1:])} ({expected} bytes) but only {actual} bytes '
            f'follow ({actual // max(item_bytes, 1)} whole items)')
    if actual > expected:
        raise ValueError(f'{path}: {actual - expected} bytes of trailing '
                         f'data after the {expected} the header declares')
    data = np.frombuffer(raw,
                         dtype,
                         count=expected // dtype.itemsize,
                         offset=header)
    return data.astype(dtype.newbyteorder('='), copy=True).reshape(shape)


def find_split_file(data_root: str, stem: str) -> str:
    """``data_root/stem`` or ``data_root/stem.gz``, whichever exists."""
    candidates = [osp.join(data_root, stem + ext) for ext in ('.gz', '')]
    for path in candidates:
        if osp.isfile(path):
            return path
    raise FileNotFoundError(f'{candidates[0]}: IDX file not found (nor '
                            f'{candidates[1]})')


@DATASETS.register_module()
class IDXDataset(ClsBaseDataset):
    """Images and labels from a pair of IDX files, held in memory.

    Args:
        data_root (str): Folder of the files. Default ''.
        split (str): 'train' or 'test', picking the MNIST-family file names
            (``train-images-idx3-ubyte[.gz]`` / ``t10k-...``). Ignored when
            ``image_file`` and ``label_file`` are given.
        image_file, label_file (str, optional): Explicit files (relative to
            ``data_root`` unless absolute, or ``pkg://<package>/<path>``);
            give both or neither.
        classes (str | Sequence[str]): Class names, or a key of
            ``IDX_CLASSES`` ('mnist', 'fashion-mnist'). Default 'mnist'.
        channels (int): 3 (grayscale stacked to ``HxWx3``, what ViT
            pipelines expect) or 1 (``HxWx1``). Default 3.
        **kwargs: See :class:`ClsBaseDataset`.
    """

    def __init__(self,
                 data_root: str = '',
                 split: str = 'train',
                 image_file: Optional[str] = None,
                 label_file: Optional[str] = None,
                 classes: Union[str, Sequence[str]] = 'mnist',
                 channels: int = 3,
                 **kwargs):
        if (image_file is None) != (label_file is None):
            raise ValueError('IDXDataset: give both image_file and '
                             'label_file, or neither')
        if image_file is None:
            if split not in IDX_SPLIT_FILES:
                raise ValueError(f'IDXDataset: split {split!r} not in '
                                 f'{tuple(IDX_SPLIT_FILES)}')
            stems = IDX_SPLIT_FILES[split]
            image_file = find_split_file(data_root, stems[0])
            label_file = find_split_file(data_root, stems[1])
        self.image_file = resolve(data_root, image_file)
        self.label_file = resolve(data_root, label_file)
        if channels not in (1, 3):
            raise ValueError(f'IDXDataset: channels must be 1 or 3, got '
                             f'{channels}')
        self.channels = channels
        if isinstance(classes, str):
            if classes not in IDX_CLASSES:
                raise ValueError(f'IDXDataset: unknown class set {classes!r}'
                                 f', known: {tuple(IDX_CLASSES)}')
            classes = IDX_CLASSES[classes]
        super().__init__(classes=classes, ann_file=self.label_file, **kwargs)

    def load_data_list(self):
        images = read_idx(self.image_file)
        labels = read_idx(self.label_file)
        if images.ndim not in (3, 4) or images.dtype != np.uint8 or (
                images.ndim == 4 and images.shape[3] not in (1, 3)):
            raise ValueError(
                f'{self.image_file}: expected uint8 images NxHxW or NxHxWxC '
                f'(C 1 or 3), got {images.dtype} {images.shape}')
        if labels.ndim != 1 or labels.dtype.kind not in 'iu':
            raise ValueError(f'{self.label_file}: expected a 1-D integer '
                             f'label file, got {labels.dtype} '
                             f'{labels.shape}')
        if len(images) != len(labels):
            raise ValueError(
                f'{self.image_file} holds {len(images)} images but '
                f'{self.label_file} holds {len(labels)} labels')
        if len(images) == 0:
            raise ValueError(f'{self.image_file}: empty split (0 images)')
        check_labels(labels, self.num_classes, self.label_file)
        return [
            image_sample(to_channels(img, self.channels), label)
            for img, label in zip(images, labels)
        ]
