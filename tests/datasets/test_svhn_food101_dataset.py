import os
import os.path as osp

import numpy as np
import pytest

from mmdyt.datasets import SVHN, Food101Dataset
from dataset_writers import mmpretrain_pipeline, write_food101, write_svhn


# -------------------------------------------------------------------- SVHN
def test_svhn_load(tmp_path):
    x = write_svhn(str(tmp_path), 'train', [1, 10, 5, 10, 9])
    write_svhn(str(tmp_path), 'test', [3, 4], seed=1)
    ds = SVHN(str(tmp_path), split='train')
    assert len(ds) == 5 and ds.num_classes == 10
    assert ds.get_gt_labels().tolist() == [1, 0, 5, 0, 9]  # 10 -> digit 0
    assert ds.get_cat_ids(1) == [0]
    info = ds.get_data_info(2)
    assert info['img'].shape == (32, 32, 3) and info['img'].dtype == np.uint8
    assert np.array_equal(info['img'], x[:, :, :, 2])
    assert info['img_shape'] == info['ori_shape'] == (32, 32)
    assert len(SVHN(str(tmp_path), split='test')) == 2


def test_svhn_pipeline(tmp_path, mmpretrain_scope):
    write_svhn(str(tmp_path), 'test', [3, 10])
    ds = SVHN(str(tmp_path), split='test', pipeline=mmpretrain_pipeline(48))
    out = ds[1]
    assert tuple(out['inputs'].shape) == (3, 48, 48)
    assert out['data_samples'].gt_label.tolist() == [0]


def test_svhn_errors(tmp_path):
    from scipy.io import savemat
    root = str(tmp_path)
    path = osp.join(root, 'test_32x32.mat')
    with pytest.raises(FileNotFoundError, match=f'{path}: SVHN .mat file'):
        SVHN(root, split='test')
    write_svhn(root, 'test', [1, 11, 3])
    with pytest.raises(ValueError,
                       match=f'{path}: item 1: label 11 outside 1..10'):
        SVHN(root, split='test')
    write_svhn(root, 'test', [0, 2])
    with pytest.raises(ValueError, match=f'{path}: item 0: label 0'):
        SVHN(root, split='test')
    savemat(
        path,
        dict(X=np.zeros((32, 32, 3, 3), np.uint8), y=np.ones((2, 1),
                                                             np.uint8)))
    with pytest.raises(ValueError,
                       match=f'{path}: X holds 3 images but y '
                       'holds 2 labels'):
        SVHN(root, split='test')
    savemat(
        path,
        dict(X=np.zeros((32, 32, 3, 0), np.uint8), y=np.ones((0, 1),
                                                             np.uint8)))
    with pytest.raises(ValueError, match=f'{path}: empty split'):
        SVHN(root, split='test')
    savemat(path, dict(X=np.zeros((32, 32, 3, 1), np.uint8)))
    with pytest.raises(ValueError, match=f"{path}: no variable 'y'"):
        SVHN(root, split='test')
    with open(path, 'wb') as f:
        f.write(b'not a mat file at all')
    with pytest.raises(ValueError, match=f'{path}: cannot read'):
        SVHN(root, split='test')
    with pytest.raises(ValueError, match="split 'val'"):
        SVHN(root, split='val')


# ---------------------------------------------------------------- Food-101
CLASSES = ['apple_pie', 'baby_back_ribs', 'waffles']


@pytest.fixture
def food_root(tmp_path):
    root = str(tmp_path / 'food-101')
    write_food101(root,
                  CLASSES,
                  train=['apple_pie/1005649', 'waffles/21', 'waffles/22'],
                  test=['baby_back_ribs/7', 'apple_pie/8'])
    return root


def test_food101_load(food_root):
    ds = Food101Dataset(food_root, split='train')
    assert len(ds) == 3 and ds.classes == tuple(CLASSES)
    assert ds.get_gt_labels().tolist() == [0, 2, 2]
    assert ds.get_cat_ids(1) == [2]
    assert ds.get_data_info(0)['img_path'] == osp.join(food_root, 'images',
                                                       'apple_pie',
                                                       '1005649.jpg')
    test = Food101Dataset(food_root, split='test')
    assert test.get_gt_labels().tolist() == [1, 0]


def test_food101_registry_name(food_root, mmpretrain_scope):
    from mmpretrain.registry import DATASETS

    # mmpretrain has its own `Food101`; ours is reachable under its own name
    assert DATASETS.get('Food101Dataset') is Food101Dataset
    ds = DATASETS.build(
        dict(type='Food101Dataset',
             data_root=food_root,
             split='test',
             pipeline=[
                 dict(type='LoadImageFromFile'),
                 dict(type='Resize', scale=(8, 8)),
                 dict(type='PackInputs')
             ]))
    assert tuple(ds[0]['inputs'].shape) == (3, 8, 8)


def _write(path, text):
    with open(path, 'w') as f:
        f.write(text)


def test_food101_errors(food_root):
    meta = osp.join(food_root, 'meta')
    train = osp.join(meta, 'train.txt')
    _write(train, 'apple_pie/1005649\npizza/3\n')
    with pytest.raises(ValueError,
                       match=f"{train}:2: class 'pizza' is not in"):
        Food101Dataset(food_root)
    _write(train, 'apple_pie/1005649\n\nwaffles\n')
    with pytest.raises(ValueError, match=f'{train}:3: malformed line'):
        Food101Dataset(food_root)
    _write(train, 'apple_pie/1005649\nwaffles/404\n')
    with pytest.raises(FileNotFoundError, match=f'{train}:2: image not found'):
        Food101Dataset(food_root)
    _write(train, '\n')
    with pytest.raises(ValueError, match=f'{train}: empty split'):
        Food101Dataset(food_root)
    os.remove(train)
    with pytest.raises(FileNotFoundError, match=f'{train}: split file'):
        Food101Dataset(food_root)
    classes = osp.join(meta, 'classes.txt')
    _write(classes, '')
    with pytest.raises(ValueError, match=f'{classes}: empty class list'):
        Food101Dataset(food_root, split='test')
    os.remove(classes)
    with pytest.raises(FileNotFoundError, match=f'{classes}: class list'):
        Food101Dataset(food_root, split='test')


def test_food101_explicit_classes(food_root):
    ds = Food101Dataset(food_root, split='test', metainfo=None,
                        classes=['baby_back_ribs', 'apple_pie'])
    assert ds.get_gt_labels().tolist() == [0, 1]
