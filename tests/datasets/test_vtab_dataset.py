import os.path as osp

import numpy as np
import pytest

from mmdyt.datasets import VTAB1K_GROUPS, VTAB1K_SPLITS, VTAB1K_TASKS, VTAB1k, read_annotation_list
from dataset_writers import write_vtab_task


def test_task_table():
    assert len(VTAB1K_TASKS) == 19
    groups = [g for g, _ in VTAB1K_TASKS.values()]
    assert [groups.count(g) for g in VTAB1K_GROUPS] == [7, 4, 8]
    n = {task: c for task, (_, c) in VTAB1K_TASKS.items()}
    assert (n['cifar'], n['caltech101'], n['dtd'], n['sun397']) == \
        (100, 102, 47, 397)
    assert (n['patch_camelyon'], n['diabetic_retinopathy'], n['kitti'],
            n['smallnorb_azi'], n['smallnorb_ele']) == (2, 5, 4, 18, 9)
    assert VTAB1K_SPLITS == ('train800', 'val200', 'train800val200', 'test')


@pytest.fixture
def vtab_root(tmp_path):
    write_vtab_task(
        str(tmp_path), 'dtd', {
            'train800': [0, 1, 46, 1],
            'val200': [2, 3],
            'train800val200': [0, 1, 46, 1, 2, 3],
            'test': [5, 5, 6]
        })
    return str(tmp_path)


def test_load_splits(vtab_root):
    sizes = {'train800': 4, 'val200': 2, 'train800val200': 6, 'test': 3}
    for split, size in sizes.items():
        ds = VTAB1k(vtab_root, task='dtd', split=split)
        assert len(ds) == size
    ds = VTAB1k(vtab_root, task='dtd', split='train800')
    assert ds.num_classes == 47 and len(ds.metainfo['classes']) == 47
    assert [ds.get_cat_ids(i) for i in range(4)] == [[0], [1], [46], [1]]
    assert ds.get_gt_labels().tolist() == [0, 1, 46, 1]
    info = ds.get_data_info(2)
    assert info['img_path'] == osp.join(vtab_root, 'dtd',
                                        'images/train800/2.jpg')
    assert osp.isfile(info['img_path']) and info['gt_label'] == 46
    # the task folder itself as data_root
    ds2 = VTAB1k(osp.join(vtab_root, 'dtd'), split='test')
    assert ds2.task == 'dtd' and ds2.get_gt_labels().tolist() == [5, 5, 6]


def test_pipeline_and_wrappers(vtab_root, mmpretrain_scope):
    from mmengine.dataset import ClassBalancedDataset
    from mmpretrain.registry import DATASETS
    ds = DATASETS.build(
        dict(type='VTAB1k',
             data_root=vtab_root,
             task='dtd',
             split='train800',
             pipeline=[
                 dict(type='LoadImageFromFile'),
                 dict(type='Resize', scale=(16, 16)),
                 dict(type='PackInputs')
             ]))
    assert type(ds) is VTAB1k
    out = ds[2]
    assert tuple(out['inputs'].shape) == (3, 16, 16)
    assert out['data_samples'].gt_label.tolist() == [46]
    assert out['data_samples'].ori_shape == (10, 12)
    balanced = ClassBalancedDataset(ds, oversample_thr=0.5)
    assert len(balanced) > len(ds)


def test_custom_num_classes(tmp_path):
    write_vtab_task(str(tmp_path), 'my_task', {'test': [0, 2]})
    ds = VTAB1k(str(tmp_path), task='my_task', split='test', num_classes=3)
    assert ds.num_classes == 3 and len(ds) == 2


# ------------------------------------------------------------------ errors
def _write(path, text):
    with open(path, 'w') as f:
        f.write(text)


def test_missing_split_file(vtab_root):
    path = osp.join(vtab_root, 'dtd', 'val200.txt')
    import os
    os.remove(path)
    with pytest.raises(FileNotFoundError, match=f'{path}: split file'):
        VTAB1k(vtab_root, task='dtd', split='val200')


def test_empty_split(vtab_root):
    path = osp.join(vtab_root, 'dtd', 'val200.txt')
    _write(path, '# nothing\n\n')
    with pytest.raises(ValueError, match=f'{path}: empty split'):
        VTAB1k(vtab_root, task='dtd', split='val200')


def test_label_out_of_range(vtab_root):
    path = osp.join(vtab_root, 'dtd', 'val200.txt')
    _write(path, 'images/val200/0.jpg 2\nimages/val200/1.jpg 47\n')
    with pytest.raises(ValueError) as e:
        VTAB1k(vtab_root, task='dtd', split='val200')
    assert f'{path}:2: label 47 outside [0, 47)' in str(e.value)
    _write(path, 'images/val200/0.jpg -1\n')
    with pytest.raises(ValueError, match=f'{path}:1: label -1 outside'):
        VTAB1k(vtab_root, task='dtd', split='val200')


def test_malformed_lines(vtab_root):
    path = osp.join(vtab_root, 'dtd', 'val200.txt')
    _write(path, 'images/val200/0.jpg 2\n\nimages/val200/1.jpg\n')
    with pytest.raises(ValueError) as e:
        VTAB1k(vtab_root, task='dtd', split='val200')
    assert f'{path}:3: malformed line' in str(e.value)
    _write(path, 'images/val200/0.jpg two\n')
    with pytest.raises(ValueError, match=f"{path}:1: label 'two' is not"):
        VTAB1k(vtab_root, task='dtd', split='val200')
    _write(path, 'images/val200/0.jpg 1.5\n')
    with pytest.raises(ValueError, match=f'{path}:1: label'):
        read_annotation_list(path, 47)


def test_missing_image(vtab_root):
    path = osp.join(vtab_root, 'dtd', 'val200.txt')
    _write(path, 'images/val200/0.jpg 2\nimages/val200/nope.jpg 3\n')
    with pytest.raises(FileNotFoundError, match=f'{path}:2: image not found'):
        VTAB1k(vtab_root, task='dtd', split='val200')
    ds = VTAB1k(vtab_root, task='dtd', split='val200', check_files=False)
    assert len(ds) == 2


def test_bad_arguments(vtab_root):
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        VTAB1k(vtab_root, task='nope')
    with pytest.raises(ValueError, match="split 'train'"):
        VTAB1k(vtab_root, task='dtd', split='train')


def test_lazy_init_keeps_metainfo(vtab_root):
    ds = VTAB1k(vtab_root, task='cifar', split='test', lazy_init=True)
    assert ds.num_classes == 100  # no folder needed until loading
    with pytest.raises(FileNotFoundError):
        ds.full_init()
    assert np.array_equal(
        VTAB1k(vtab_root, task='dtd', split='test').get_gt_labels(), [5, 5, 6])


@pytest.mark.parametrize('toolbox', ['mmpretrain', 'mmseg', 'mmaction'])
def test_visible_from_toolbox_scopes(toolbox):
    """Root-registry names resolve from every toolbox's registry."""
    import importlib
    registry = importlib.import_module(
        f'{pytest.importorskip(toolbox).__name__}.registry')
    from mmdyt.datasets import SVHN, CSVDigits, Food101Dataset, IDXDataset
    for cls in (VTAB1k, SVHN, Food101Dataset, IDXDataset, CSVDigits):
        assert registry.DATASETS.get(cls.__name__) is cls
