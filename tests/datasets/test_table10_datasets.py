"""The Table 10 dataset configs read small fakes written in each release's
on-disk layout through mmpretrain's classes, with the configs' pipelines."""
import os.path as osp

import pytest
from mmengine.config import Config

from dataset_writers import (write_cifar10, write_dtd, write_fgvc_aircraft, write_flowers102,
                             write_oxford_pets, write_stanford_cars)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN, TEST = [0, 1, 1, 0, 1, 0], [1, 0]


def write(name, root):
    """Writes the fake; returns the (train, test) labels the config's splits
    must read."""
    if name == 'cifar10':
        write_cifar10(root, TRAIN, TEST)
        return TRAIN, TEST
    if name == 'dtd':  # trainval = train + val
        write_dtd(root, TRAIN[:4], TRAIN[4:], TEST)
        return TRAIN, TEST
    if name == 'fgvc_aircraft':
        from mmpretrain.datasets import FGVCAircraft
        write_fgvc_aircraft(root, {'trainval': TRAIN, 'test': TEST},
                            FGVCAircraft.METAINFO['classes'])
        return TRAIN, TEST
    if name == 'flowers102':
        write_flowers102(root, TRAIN[:4], TRAIN[4:], TEST)
        return TRAIN, TEST
    if name == 'oxford_pets':
        write_oxford_pets(root, TRAIN, TEST)
        return TRAIN, TEST
    write_stanford_cars(root, TRAIN, TEST)
    return TRAIN, TEST


@pytest.mark.parametrize('name', ['cifar10', 'dtd', 'fgvc_aircraft', 'flowers102',
                                  'oxford_pets', 'stanford_cars'])
def test_config_reads_the_release_layout(name, tmp_path, mmpretrain_scope, monkeypatch):
    from mmpretrain.datasets import CIFAR10
    from mmpretrain.registry import DATASETS

    # the fake batches cannot have the release's md5 sums
    monkeypatch.setattr(CIFAR10, '_check_integrity', lambda self: True)
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'cls', '_base_', 'datasets',
                                   f'{name}_bs128_rrc.py'))
    root = str(tmp_path / name)
    expected = write(name, root)
    for loader, labels in zip(('train_dataloader', 'test_dataloader'), expected):
        dataset = DATASETS.build(dict(cfg[loader].dataset, data_root=root))
        assert type(dataset).__name__ == cfg.dataset_type
        assert dataset.get_gt_labels().tolist() == labels
        if 'classes' in dataset.metainfo:  # Flowers102 has no class names
            assert len(dataset.metainfo['classes']) == cfg.data_preprocessor.num_classes
        sample = dataset[0]
        assert tuple(sample['inputs'].shape) == (3, 224, 224)
        assert sample['data_samples'].gt_label.item() == labels[0]
