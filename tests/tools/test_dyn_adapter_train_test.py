"""Dyn-Adapter end to end: two training iterations through tools/train.py, a
test through tools/test.py that reports accuracy, mean GFLOPs and the exit
histogram, and threshold calibration to a FLOPs budget, on a VTAB-1K task
written in the real on-disk format."""
import glob
import os.path as osp

import pytest

pytest.importorskip('mmpretrain')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from dataset_writers import write_vtab_task  # noqa: E402
from train_runs import load_tool, tiny_vtab_options  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_thread')

TASK, NUM_CLASSES = 'eurosat', 10
CONFIGS = {
    'dyn_adapter': 'configs/cls/dyn_adapter/dyn-adapter_vit-b16_vtab1k.py',
    'dyn_repadapter': 'configs/cls/dyn_repadapter/dyn-repadapter_vit-b16_vtab1k.py',
    'dyn_adapter_dyt': 'configs/cls/dyn_adapter/dyn-adapter-dyt-r0.5_vit-b16_vtab1k.py',
}


@pytest.fixture(scope='module')
def vtab_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('vtab-1k'))
    write_vtab_task(root, TASK, {'train800': [0, 3, 7, 9], 'val200': [1, 2, 4, 8, 9, 0],
                                 'test': [1, 3, 5, 9]})
    return root


def tiny_options(data_root, name, test_split='test'):
    """--cfg-options: the tiny task (exits after blocks 3, 6, 9, 12 of the
    12-layer ViT), 10 classes."""
    splits = dict(train_dataloader='train800', val_dataloader='val200',
                  test_dataloader=test_split)
    return tiny_vtab_options(data_root, TASK, splits, name) + [f'model.num_classes={NUM_CLASSES}']


@pytest.mark.parametrize('method', sorted(CONFIGS))
def test_train_two_iters_test_and_calibrate(method, vtab_root, tmp_path, capsys):
    config = osp.join(ROOT, CONFIGS[method])
    work_dir = str(tmp_path / method)
    train, test = load_tool('train'), load_tool('test')
    train.main([config, '--work-dir', work_dir, '--cfg-options'] +
               tiny_options(vtab_root, f'{method}_train'))
    log = open(glob.glob(osp.join(work_dir, '*', '*.log'))[0]).read()
    assert 'Epoch(train) [1][2/2]' in log
    assert all(f'loss_exit{j}:' in log for j in range(4))
    assert 'lambda_shallow:' in log and 'lambda_deep:' in log
    if method == 'dyn_adapter_dyt':
        assert 'loss_rate:' in log

    checkpoint = osp.join(work_dir, 'epoch_1.pth')
    metrics = test.main([config, checkpoint, '--work-dir', work_dir, '--cfg-options'] +
                        tiny_options(vtab_root, f'{method}_test', test_split='val200'))
    full_gflops = metrics['early_exit/gflops']
    assert 0.0 <= metrics['early_exit/accuracy'] <= 100.0
    assert metrics['early_exit/accuracy'] == pytest.approx(metrics['accuracy/top1'])
    assert metrics['early_exit/exit3_ratio'] == 1.0  # thresholds 1.0: the last head
    test_log = open(max(glob.glob(osp.join(work_dir, '*', '*.log')), key=osp.getmtime)).read()
    for key in ('early_exit/accuracy', 'early_exit/gflops', 'early_exit/exit0_ratio'):
        assert key in test_log
    if method == 'dyn_adapter_dyt':
        assert 0.0 <= metrics['efficiency/activation_rate'] <= 1.0

    calibrate = load_tool('analysis_tools/calibrate_exits')
    out = str(tmp_path / 'calibrated.py')
    options = tiny_options(vtab_root, f'{method}_calibrated', test_split='val200')
    thresholds = calibrate.main([config, checkpoint, '--budget', '0.5', '--out', out,
                                 '--cfg-options'] + options)
    printed = capsys.readouterr().out
    assert 'exit histogram' in printed and out in printed
    assert open(out).readline().startswith('# ')
    metrics = test.main([out, checkpoint, '--work-dir', work_dir])
    assert metrics['early_exit/gflops'] <= 0.5 * full_gflops
    assert metrics['early_exit/exit3_ratio'] < 1.0
    assert len(thresholds) == 4


@pytest.mark.parametrize('method', ['dyn-lora', 'dyn-repadapter'])
def test_budget_config_calibrates_before_testing(method, vtab_root, tmp_path):
    """A ``*-b50`` config trains as its method config does; tools/test.py then
    merges the PETL modules, calibrates the thresholds on val200 to 50 % of
    the backbone FLOPs (ExitCalibrationHook) and tests with them."""
    folder = method.replace('-', '_')
    budget_config = osp.join(ROOT, f'configs/cls/{folder}/{method}-b50_vit-b16_vtab1k.py')
    work_dir = str(tmp_path / method)
    train, test = load_tool('train'), load_tool('test')
    train.main([budget_config, '--work-dir', work_dir, '--cfg-options'] +
               tiny_options(vtab_root, f'{method}_b50_train'))
    checkpoint = osp.join(work_dir, 'epoch_1.pth')
    full = test.main([budget_config, checkpoint, '--work-dir', work_dir, '--cfg-options',
                      'exit_budget=None'] + tiny_options(vtab_root, f'{method}_full', 'val200'))
    calibrated = test.main([budget_config, checkpoint, '--work-dir', work_dir, '--cfg-options'] +
                           tiny_options(vtab_root, f'{method}_b50', 'val200'))
    assert full['early_exit/exit3_ratio'] == 1.0
    assert calibrated['early_exit/gflops'] <= 0.5 * full['early_exit/gflops']
    log = open(max(glob.glob(osp.join(work_dir, '*', '*.log')), key=osp.getmtime)).read()
    assert 'ExitCalibrationHook (per_exit): thresholds' in log
    assert 'for 50% of the backbone' in log
    assert 'exit  threshold  share   accuracy' in log
