"""SVHN (cropped digits) from the official ``*_32x32.mat`` files."""
import os.path as osp

import numpy as np
from mmengine.registry import DATASETS

from .base import DIGIT_CLASSES, ClsBaseDataset, image_sample, require_file

SVHN_SPLITS = ('train', 'test', 'extra')


@DATASETS.register_module()
class SVHN(ClsBaseDataset):
    """SVHN format 2 (32x32 crops), held in memory.

    On disk: ``data_root/{train,test,extra}_32x32.mat``, each a MATLAB v5
    file with ``X`` (``32x32x3xN`` uint8) and ``y`` (``Nx1``, digits as
    1..10 where 10 stands for the digit 0). Labels are mapped to 0..9.

    Samples carry ``img`` (``32x32x3`` uint8, RGB), so the pipeline starts at
    ``Resize`` (no ``LoadImageFromFile``).

    Args:
        data_root (str): Folder of the ``.mat`` files.
        split (str): 'train', 'test' or 'extra'. Default 'train'.
        **kwargs: See :class:`ClsBaseDataset`.
    """

    METAINFO = dict(classes=DIGIT_CLASSES)

    def __init__(self, data_root: str, split: str = 'train', **kwargs):
        if split not in SVHN_SPLITS:
            raise ValueError(f'SVHN: split {split!r} not in {SVHN_SPLITS}')
        self.split = split
        super().__init__(ann_file=osp.join(data_root, f'{split}_32x32.mat'),
                         **kwargs)

    def load_data_list(self):
        from scipy.io import loadmat
        path = require_file(self.ann_file, 'SVHN .mat file')
        try:
            mat = loadmat(path)
        except Exception as e:  # scipy raises several types for bad files
            raise ValueError(f'{path}: cannot read as a MATLAB .mat file '
                             f'({type(e).__name__}: {e})') from e
        for key in ('X', 'y'):
            if key not in mat:
                raise ValueError(f'{path}: no variable {key!r} (the SVHN '
                                 'format has X and y)')
        x, y = mat['X'], np.asarray(mat['y']).reshape(-1)
        if x.ndim != 4 or x.shape[2] != 3:
            raise ValueError(f'{path}: X has shape {x.shape}, expected '
                             'HxWx3xN')
        if x.shape[3] != y.size:
            raise ValueError(f'{path}: X holds {x.shape[3]} images but y '
                             f'holds {y.size} labels')
        if y.size == 0:
            raise ValueError(f'{path}: empty split (0 images)')
        bad = np.flatnonzero((y < 1) | (y > 10) | (y != np.round(y)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f'{path}: item {i}: label {y[i]} outside 1..10 '
                             f'({bad.size} such items)')
        labels = y.astype(np.int64) % 10  # 10 -> digit 0
        images = np.ascontiguousarray(
            np.transpose(x, (3, 0, 1, 2)).astype(np.uint8, copy=False))
        return [image_sample(img, label) for img, label in zip(images, labels)]
