import gzip
import os.path as osp

import numpy as np
import pytest

from mmdyt.datasets import CSVDigits, IDXDataset, read_idx, split_indices
from dataset_writers import idx_bytes, write_csv, write_idx


def _images(n, h=6, w=5, seed=0):
    return np.random.default_rng(seed).integers(0,
                                                256, (n, h, w),
                                                dtype=np.uint8)


# --------------------------------------------------------------------- IDX
@pytest.mark.parametrize('gz', [True, False])
def test_idx_split_files(tmp_path, gz):
    ext = '.gz' if gz else ''
    imgs, labels = _images(7), np.array([0, 1, 2, 9, 9, 3, 4], np.uint8)
    write_idx(str(tmp_path / f'train-images-idx3-ubyte{ext}'), imgs)
    write_idx(str(tmp_path / f'train-labels-idx1-ubyte{ext}'), labels)
    write_idx(str(tmp_path / f't10k-images-idx3-ubyte{ext}'), imgs[:2])
    write_idx(str(tmp_path / f't10k-labels-idx1-ubyte{ext}'), labels[:2])
    ds = IDXDataset(str(tmp_path), split='train', classes='fashion-mnist')
    assert len(ds) == 7 and ds.classes[9] == 'Ankle boot'
    assert ds.get_gt_labels().tolist() == labels.tolist()
    assert ds.get_cat_ids(3) == [9]
    info = ds.get_data_info(4)
    assert info['img'].shape == (6, 5, 3) and info['img'].dtype == np.uint8
    assert all(np.array_equal(info['img'][..., c], imgs[4]) for c in range(3))
    assert info['img_shape'] == info['ori_shape'] == (6, 5)
    assert len(IDXDataset(str(tmp_path), split='test')) == 2
    gray = IDXDataset(str(tmp_path), split='test', channels=1)
    assert gray.get_data_info(1)['img'].shape == (6, 5, 1)


def test_idx_explicit_files_and_dtypes(tmp_path):
    imgs = _images(3)
    write_idx(str(tmp_path / 'a.idx'), imgs)
    write_idx(str(tmp_path / 'b.idx'), np.array([1, 2, 0]), code=0x0C)
    ds = IDXDataset(str(tmp_path),
                    image_file='a.idx',
                    label_file='b.idx',
                    classes=['x', 'y', 'z'])
    assert ds.get_gt_labels().tolist() == [1, 2, 0]
    floats = np.linspace(-1, 1, 6).reshape(2, 3)
    write_idx(str(tmp_path / 'f.idx'), floats, code=0x0D)
    assert np.allclose(read_idx(str(tmp_path / 'f.idx')), floats)
    with pytest.raises(ValueError, match='give both'):
        IDXDataset(str(tmp_path), image_file='a.idx')


def test_idx_truncated(tmp_path):
    data = idx_bytes(_images(5))  # header says 5 items of 6x5 = 150 bytes
    path = str(tmp_path / 'images.idx')
    with open(path, 'wb') as f:
        f.write(data[:-40])
    with pytest.raises(ValueError) as e:
        read_idx(path)
    msg = str(e.value)
    assert msg.startswith(f'{path}: truncated IDX file')
    assert 'header says 5 items' in msg and '110 bytes' in msg
    assert '3 whole items' in msg
    gz = path + '.gz'
    with open(gz, 'wb') as f:  # same, gzipped
        f.write(gzip.compress(data[:-40]))
    with pytest.raises(ValueError, match=f'{gz}: truncated IDX file'):
        read_idx(gz)
    with open(gz, 'wb') as f:  # a cut gzip stream
        f.write(gzip.compress(data)[:-30])
    with pytest.raises(ValueError, match=f'{gz}: truncated or corrupt gzip'):
        read_idx(gz)
    with open(path, 'wb') as f:
        f.write(data[:9])
    with pytest.raises(ValueError, match=f'{path}: truncated IDX header'):
        read_idx(path)
    with open(path, 'wb') as f:
        f.write(data + b'\0\0')
    with pytest.raises(ValueError, match=f'{path}: 2 bytes of trailing'):
        read_idx(path)
    with open(path, 'wb') as f:
        f.write(b'\x01\x02' + data[2:])
    with pytest.raises(ValueError, match=f'{path}: not an IDX file'):
        read_idx(path)
    with open(path, 'wb') as f:
        f.write(b'\0\0\x42' + data[3:])
    with pytest.raises(ValueError, match=f'{path}: unknown IDX data type'):
        read_idx(path)


def test_idx_dataset_errors(tmp_path):
    root = str(tmp_path)
    img_file = write_idx(osp.join(root, 'i.idx'), _images(4))
    lbl_file = write_idx(osp.join(root, 'l.idx'), np.array([0, 1, 2],
                                                           np.uint8))

    def build(**kw):
        return IDXDataset(root, image_file='i.idx', label_file='l.idx', **kw)

    with pytest.raises(ValueError) as e:
        build()
    assert f'{img_file} holds 4 images but {lbl_file} holds 3 labels' in \
        str(e.value)
    write_idx(lbl_file, np.array([0, 1, 12, 3], np.uint8))
    with pytest.raises(ValueError,
                       match=f'{lbl_file}: item 2: label 12 outside'):
        build()
    write_idx(img_file, np.zeros((0, 6, 5), np.uint8))
    write_idx(lbl_file, np.zeros((0, ), np.uint8))
    with pytest.raises(ValueError, match=f'{img_file}: empty split'):
        build()
    write_idx(img_file, np.zeros((2, 6, 5), np.int32), code=0x0C)
    with pytest.raises(ValueError, match=f'{img_file}: expected uint8'):
        build()
    missing = osp.join(root, 'train-images-idx3-ubyte.gz')
    with pytest.raises(FileNotFoundError, match=f'{missing}: IDX file not'):
        IDXDataset(root, split='train')
    with pytest.raises(ValueError, match="unknown class set 'cifar'"):
        build(classes='cifar')


# --------------------------------------------------------------------- CSV
def _digit_rows(n_per_class=10, side=4, classes=3, seed=0, label_first=False):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_per_class * classes):
        pix = rng.integers(0, 256, side * side).tolist()
        label = i % classes
        rows.append([label] + pix if label_first else pix + [label])
    return rows


def test_csv_split(tmp_path):
    path = write_csv(str(tmp_path / 'd.csv.gz'), _digit_rows(), gz=True)
    train = CSVDigits(path, split='train', test_ratio=0.2, seed=3)
    test = CSVDigits(path, split='test', test_ratio=0.2, seed=3)
    full = CSVDigits(path, split='all')
    assert (len(train), len(test), len(full)) == (24, 6, 30)
    assert train.image_size == 4
    assert np.bincount(test.get_gt_labels()).tolist() == [2, 2, 2]
    img = test.get_data_info(0)['img']
    assert img.shape == (4, 4, 3) and img.dtype == np.uint8
    # fixed seed: same split again, disjoint train / test
    again = CSVDigits(path, split='test', test_ratio=0.2, seed=3)

    def imgs(ds):
        return {ds.get_data_info(i)['img'].tobytes() for i in range(len(ds))}

    assert imgs(again) == imgs(test)
    assert not imgs(train) & imgs(test)
    assert imgs(train) | imgs(test) == imgs(full)
    other = CSVDigits(path, split='test', test_ratio=0.2, seed=4)
    assert imgs(other) != imgs(test)
    assert CSVDigits(path, split='test', stratify=False,
                     channels=1).get_data_info(0)['img'].shape == (4, 4, 1)


def test_csv_label_first_and_scaling(tmp_path):
    rows = [[1] + [16] * 9, [0] + [8] * 9]  # 3x3, sklearn-like 0..16 pixels
    path = write_csv(str(tmp_path / 'd.csv'), rows)
    ds = CSVDigits(path, split='all', label_column=0)
    assert ds.get_gt_labels().tolist() == [1, 0]
    assert ds.get_data_info(0)['img'].max() == 255
    assert ds.get_data_info(1)['img'].max() == 128
    ds = CSVDigits(path, split='all', label_column=0, max_value=255)
    assert ds.get_data_info(0)['img'].max() == 16


def test_split_indices_deterministic():
    labels = np.repeat([0, 1], 50)
    a = split_indices(labels, 'test', 0.1, seed=0)
    assert np.array_equal(a, split_indices(labels, 'test', 0.1, seed=0))
    assert np.bincount(labels[a]).tolist() == [5, 5]


def test_csv_errors(tmp_path):
    path = str(tmp_path / 'd.csv')
    rows = _digit_rows(2)
    write_csv(path, rows[:3] + [rows[3][:-2]] + rows[4:])
    with pytest.raises(ValueError, match=f'{path}:4: 15 columns, expected 17'):
        CSVDigits(path)
    rows[2][-1] = 10
    write_csv(path, rows)
    with pytest.raises(ValueError, match=f'{path}:3: label 10 outside'):
        CSVDigits(path)
    rows[2][-1] = 'x'
    write_csv(path, rows)
    with pytest.raises(ValueError, match=f'{path}:3: non-numeric'):
        CSVDigits(path)
    rows[2][-1] = 1.5
    write_csv(path, rows)
    with pytest.raises(ValueError, match=f"{path}:3: label '?1.5'? is not"):
        CSVDigits(path)
    rows[2][-1] = 1
    rows[4][0] = 300
    write_csv(path, rows)
    with pytest.raises(ValueError, match=f'{path}:5: pixel values outside'):
        CSVDigits(path)
    write_csv(path, [[1, 2, 3, 0]])
    with pytest.raises(ValueError, match=f'{path}:1: 3 pixel columns'):
        CSVDigits(path)
    write_csv(path, [])
    with pytest.raises(ValueError, match=f'{path}: empty CSV'):
        CSVDigits(path)
    write_csv(path, [[0] * 4 + [1]])  # one row: its class gets no test item
    with pytest.raises(ValueError, match=f"{path}: empty 'test' split"):
        CSVDigits(path, split='test')
    missing = str(tmp_path / 'nope.csv')
    with pytest.raises(FileNotFoundError, match=f'{missing}: CSV file'):
        CSVDigits(missing)
    with pytest.raises(FileNotFoundError, match="no installed package"):
        CSVDigits('pkg://no_such_package_xyz/a.csv')
    with pytest.raises(ValueError, match='test_ratio'):
        CSVDigits(path, test_ratio=1.0)


def test_in_memory_pipeline_and_wrappers(tmp_path, mmpretrain_scope):
    from mmengine.dataset import ClassBalancedDataset
    from mmpretrain.registry import DATASETS
    write_idx(str(tmp_path / 'i.idx.gz'), _images(5, 28, 28))
    write_idx(str(tmp_path / 'l.idx.gz'), np.array([0, 0, 0, 0, 1], np.uint8))
    for channels in (1, 3):
        ds = DATASETS.build(
            dict(type='IDXDataset',
                 data_root=str(tmp_path),
                 image_file='i.idx.gz',
                 label_file='l.idx.gz',
                 channels=channels,
                 pipeline=[
                     dict(type='Resize', scale=(32, 32)),
                     dict(type='PackInputs')
                 ]))
        out = ds[4]
        assert tuple(out['inputs'].shape) == (channels, 32, 32)
        assert out['data_samples'].gt_label.tolist() == [1]
    balanced = ClassBalancedDataset(ds, oversample_thr=0.5)
    assert len(balanced) > len(ds)  # the rare class 1 is repeated
