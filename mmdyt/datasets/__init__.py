"""Datasets in their standard on-disk formats (toolbox-neutral).

All classes subclass :class:`mmengine.dataset.BaseDataset` and register in
mmengine's root ``DATASETS``, so configs of any toolbox scope find them.
CIFAR-100 is mmpretrain's ``CIFAR100`` (no class here). The toolbox
transforms that check the data are in :mod:`mmdyt.datasets.transforms`.
"""
from . import transforms  # noqa: F401
from .base import (DIGIT_CLASSES, ClsBaseDataset, check_labels, image_sample, parse_label,
                   read_annotation_list)
from .csv_digits import CSVDigits, read_csv_rows, split_indices
from .food101 import Food101Dataset
from .idx import FASHION_MNIST_CLASSES, IDX_CLASSES, IDXDataset, read_idx
from .imagenet_variants import IMAGENET_VARIANTS, ImageNetVariant, read_synsets
from .svhn import SVHN
from .vtab import VTAB1K_GROUPS, VTAB1K_SPLITS, VTAB1K_TASKS, VTAB1k

__all__ = [
    'ClsBaseDataset', 'VTAB1k', 'VTAB1K_TASKS', 'VTAB1K_GROUPS',
    'VTAB1K_SPLITS', 'SVHN', 'Food101Dataset', 'IDXDataset', 'CSVDigits',
    'read_annotation_list', 'read_idx', 'read_csv_rows', 'split_indices',
    'parse_label', 'check_labels', 'image_sample', 'DIGIT_CLASSES',
    'FASHION_MNIST_CLASSES', 'IDX_CLASSES', 'IMAGENET_VARIANTS', 'ImageNetVariant',
    'read_synsets'
]
