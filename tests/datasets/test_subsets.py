"""ClsBaseDataset's selections: ``class_subset`` (keep and relabel some
classes) and ``few_shot`` (a VTAB-1K-style train / val / rest split)."""
import os.path as osp

import numpy as np
import pytest

from mmdyt.datasets import CSVDigits, IDXDataset
from mmdyt.datasets.base import few_shot_indices
from dataset_writers import write_csv, write_idx


def idx_dataset(root, **kwargs):
    """An IDX pair of 100 images whose first pixel is their index, labels i % 10."""
    images = np.zeros((100, 4, 4), np.uint8)
    images[:, 0, 0] = np.arange(100)
    write_idx(osp.join(root, 'img.idx'), images)
    write_idx(osp.join(root, 'lab.idx'), (np.arange(100) % 10).astype(np.uint8))
    return IDXDataset(data_root=root, image_file='img.idx', label_file='lab.idx',
                      classes='fashion-mnist', pipeline=[], **kwargs)


def sample_ids(dataset):
    return [int(dataset[i]['img'][0, 0, 0]) for i in range(len(dataset))]


def test_class_subset_keeps_and_relabels_in_the_given_order(tmp_path):
    dataset = idx_dataset(str(tmp_path), class_subset=[9, 2, 4])
    assert dataset.classes == ('Ankle boot', 'Pullover', 'Coat')
    assert len(dataset) == 30
    for i in range(len(dataset)):
        original = sample_ids(dataset)[i] % 10
        assert dataset[i]['gt_label'] == [9, 2, 4].index(original)


def test_few_shot_splits_are_disjoint_and_cover_the_data(tmp_path):
    splits = {split: set(sample_ids(idx_dataset(
        str(tmp_path), few_shot=dict(split=split, num_train=30, num_val=20, seed=3))))
        for split in ('train', 'val', 'trainval', 'rest')}
    assert [len(splits[s]) for s in ('train', 'val', 'trainval', 'rest')] == [30, 20, 50, 50]
    assert not splits['train'] & splits['val']
    assert splits['train'] | splits['val'] == splits['trainval']
    assert splits['trainval'] | splits['rest'] == set(range(100))
    other_seed = set(sample_ids(idx_dataset(
        str(tmp_path), few_shot=dict(split='train', num_train=30, num_val=20, seed=4))))
    assert other_seed != splits['train']


def test_few_shot_applies_after_class_subset(tmp_path):
    dataset = idx_dataset(str(tmp_path), class_subset=[1, 3],
                          few_shot=dict(split='train', num_train=8, num_val=4))
    assert len(dataset) == 8 and set(dataset.get_gt_labels()) <= {0, 1}
    assert all(i % 10 in (1, 3) for i in sample_ids(dataset))


def test_few_shot_on_csv_digits_rest_is_a_test_set(tmp_path):
    rows = [[i % 256] * 16 + [i % 10] for i in range(60)]
    path = write_csv(str(tmp_path / 'digits.csv'), rows)
    rest = CSVDigits(data_file=path, split='all', pipeline=[],
                     few_shot=dict(split='rest', num_train=40, num_val=10))
    assert len(rest) == 10


@pytest.mark.parametrize('kwargs, message', [
    (dict(class_subset=[1, 1]), 'class_subset must be distinct labels in \\[0, 10\\)'),
    (dict(class_subset=[10]), 'class_subset must be distinct'),
    (dict(class_subset=[]), 'class_subset must be distinct'),
    (dict(few_shot=dict(split='test')), "few_shot split 'test' not in"),
    (dict(few_shot=dict(num_train=5)), 'few_shot must be a dict with `split`'),
    (dict(few_shot=dict(split='train', num_val=-1)), 'few_shot num_val must be an int >= 0'),
    (dict(few_shot=dict(split='train', num_train=800)),
     "IDXDataset: few_shot split 'train' needs at least 1000 samples .* the data has 100"),
    (dict(class_subset=[2], few_shot=dict(split='rest', num_train=8, num_val=2)),
     "few_shot split 'rest' needs at least 11 samples .* the data has 10"),
])
def test_bad_selections_name_the_problem(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        idx_dataset(str(tmp_path), **kwargs)


def test_few_shot_indices_are_sorted_and_seeded():
    first = few_shot_indices(50, 'train', num_train=10, num_val=5, seed=0)
    assert list(first) == sorted(first)
    assert (first == few_shot_indices(50, 'train', num_train=10, num_val=5, seed=0)).all()
