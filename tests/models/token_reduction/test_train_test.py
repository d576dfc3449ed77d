"""Two training iterations and a test run of each token-reduction family
through tools/train.py and tools/test.py on a tiny VTAB-1K task in the real
on-disk format, the tiny ViT set by --cfg-options."""
import glob
import os.path as osp

import pytest
import torch

pytest.importorskip('mmpretrain')

from dataset_writers import write_vtab_task  # noqa: E402
from train_runs import load_tool, tiny_vtab_options  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
TASK, NUM_CLASSES = 'eurosat', 10
# family -> (config, extra --cfg-options, loss names in the training log)
FAMILIES = {
    'tome': ('configs/cls/tome/tome-r8_vit-b16_vtab1k.py',
             ['model.backbone.token_reduction.r=2'], []),
    'evit_adaptformer': ('configs/cls/evit/evit-k0.7-adaptformer_vit-b16_vtab1k.py', [], []),
    'dynamicvit_adaptformer': ('configs/cls/dynamicvit/dynamicvit-rho0.7-adaptformer_vit-b16_'
                               'vtab1k.py', [],
                               ['loss_ratio:', 'loss_distill:', 'loss_token_distill:']),
    'dyt_tome': ('configs/cls/dyt/dyt-r0.5-tome-r8-d8_vit-b16_vtab1k.py',
                 ['model.backbone.token_reduction.r=2'], ['loss_rate:']),
}


@pytest.fixture(scope='module')
def vtab_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('vtab-1k'))
    write_vtab_task(root, TASK, {'train800val200': [0, 3, 7, 9], 'test': [1, 3, 5, 9]})
    return root


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_options(data_root, name, extra):
    splits = dict(train_dataloader='train800val200', val_dataloader='test',
                  test_dataloader='test')
    return tiny_vtab_options(data_root, TASK, splits, name) + [
        'model.head.in_channels=192', f'model.head.num_classes={NUM_CLASSES}'] + extra


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_train_two_iters_and_test(family, vtab_root, tmp_path, one_thread):
    config, extra, loss_names = FAMILIES[family]
    config = osp.join(ROOT, config)
    work_dir = str(tmp_path / family)
    load_tool('train').main([config, '--work-dir', work_dir, '--cfg-options'] +
                            tiny_options(vtab_root, f'{family}_train', extra))
    log = open(glob.glob(osp.join(work_dir, '*', '*.log'))[0]).read()
    assert 'Epoch(train) [1][2/2]' in log and 'gflops:' in log
    for name in loss_names:
        assert name in log, name
    metrics = load_tool('test').main(
        [config, osp.join(work_dir, 'epoch_1.pth'), '--work-dir', work_dir, '--cfg-options'] +
        tiny_options(vtab_root, f'{family}_test', extra))
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0
    # fewer FLOPs than the dense tiny ViT (12 blocks on 50 tokens): tokens really went
    dense = 12 * (50 * (5 * 192 * 2 + 4 * 192**2 + 2 * 192 * 768) + 2 * 50**2 * 192)
    assert 0 < metrics['efficiency/gflops'] * 1e9 < dense
