"""Two training iterations and a test run of every classification method
family through tools/train.py and tools/test.py, on a VTAB-1K task the test
writes in the real on-disk format (JPEGs + split lists)."""
import glob
import os.path as osp

import pytest

pytest.importorskip('mmpretrain')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from dataset_writers import write_vtab_task  # noqa: E402
from train_runs import load_tool, tiny_vtab_options  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_thread')

TASK, NUM_CLASSES = 'eurosat', 10
# family -> (config, whether the backbone dispatches tokens)
FAMILIES = {
    'dyt_vtab': ('configs/cls/dyt/dyt-r0.5-d8_vit-b16_vtab1k.py', True),
    'dyt_distill': ('configs/cls/dyt/dyt-distill-r0.5_vit-b16_food101.py', True),
    'dyt_moe': ('configs/cls/dyt/dyt-moe4-r0.5_vit-b16_food101.py', True),
    'adaptformer': ('configs/cls/adaptformer/adaptformer-d64_vit-b16_food101.py', False),
    'lora': ('configs/cls/lora/lora-r8_vit-b16_food101.py', False),
    'vpt': ('configs/cls/vpt/vpt-deep10_vit-b16_food101.py', False),
    'linear': ('configs/cls/linear/linear_vit-b16_food101.py', False),
    'full': ('configs/cls/full/full_vit-b16_food101.py', False),
    'dynamic_full': ('configs/cls/dynamic_full/dynamic_full-r0.5_vit-b16_food101.py', True),
}


@pytest.fixture(scope='module')
def vtab_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('vtab-1k'))
    write_vtab_task(root, TASK, {'train800val200': [0, 3, 7, 9], 'test': [1, 3, 5, 9]})
    return root


def tiny_options(data_root, name):
    """--cfg-options: the tiny VTAB task in place of the config's dataset,
    with a 10-class head on the 192-wide ViT."""
    splits = dict(train_dataloader='train800val200', val_dataloader='test',
                  test_dataloader='test')
    return tiny_vtab_options(data_root, TASK, splits, name) + [
        'model.head.in_channels=192', f'model.head.num_classes={NUM_CLASSES}']


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_train_two_iters_and_test(family, vtab_root, tmp_path):
    config, dispatching = FAMILIES[family]
    work_dir = str(tmp_path / family)
    train, test = load_tool('train'), load_tool('test')
    train.main([osp.join(ROOT, config), '--work-dir', work_dir, '--cfg-options'] +
               tiny_options(vtab_root, f'{family}_train'))

    log = open(glob.glob(osp.join(work_dir, '*', '*.log'))[0]).read()
    assert 'Epoch(train) [1][2/2]' in log
    assert 'gflops:' in log
    if dispatching:
        assert 'loss_rate:' in log
        assert 'rate_layer0:' in log and 'rate_layer11:' in log
        assert 'activation_rate:' in log
    if family == 'dyt_distill':
        assert 'loss_teacher:' in log and 'loss_distill:' in log

    checkpoint = osp.join(work_dir, 'epoch_1.pth')
    assert osp.isfile(checkpoint)
    metrics = test.main([osp.join(ROOT, config), checkpoint, '--work-dir', work_dir,
                         '--cfg-options'] + tiny_options(vtab_root, f'{family}_test'))
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0
    assert metrics['efficiency/gflops'] > 0
    if dispatching:
        assert 0.0 <= metrics['efficiency/activation_rate'] <= 1.0
        assert 'efficiency/rate_layer11' in metrics
    else:
        assert 'efficiency/activation_rate' not in metrics


def test_vtab_table_runs_a_task_and_prints_group_means(
        vtab_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    table = load_tool('analysis_tools/vtab_table')
    config = osp.join(ROOT, FAMILIES['dyt_vtab'][0])
    options = [o for o in tiny_options(vtab_root, 'vtab_table')
               if not o.startswith('model.head.num_classes')]
    rows = table.main([config, '--data-root', vtab_root, '--work-dir', str(tmp_path),
                       '--tasks', TASK, '--cfg-options'] + options)
    row = rows['dyt-r0.5-d8_vit-b16_vtab1k']
    assert 0.0 <= row[TASK] <= 100.0 and row['gflops'] > 0
    assert row['specialized'] is None  # three of its four tasks are missing
    assert '| dyt-r0.5-d8_vit-b16_vtab1k |' in capsys.readouterr().out

    # collect-only reads the same result back; group means over full groups
    fake = {task: {'accuracy/top1': float(i), 'efficiency/gflops': 12.0}
            for i, task in enumerate(table.VTAB1K_TASKS)}
    summary = table.summarize(fake)
    assert summary['natural'] == pytest.approx(3.0)       # tasks 0..6
    assert summary['specialized'] == pytest.approx(8.5)   # tasks 7..10
    assert summary['structured'] == pytest.approx(14.5)   # tasks 11..18
    assert summary['group_mean'] == pytest.approx((3.0 + 8.5 + 14.5) / 3)
    again = table.main([config, '--work-dir', str(tmp_path), '--tasks', TASK,
                        '--collect-only'])
    assert again['dyt-r0.5-d8_vit-b16_vtab1k'][TASK] == row[TASK]


def test_vtab_table_best_report_tests_the_best_validated_checkpoint(
        vtab_root, tmp_path, monkeypatch, capsys):
    """--report best (the reference code's reporting): validation after every
    epoch, save_best keeps the best checkpoint, the test runs on it."""
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    table = load_tool('analysis_tools/vtab_table')
    config = osp.join(ROOT, 'configs/cls/dyt/dyt-distill-r0.5-d8_vit-b16_vtab1k.py')
    options = [o for o in tiny_options(vtab_root, 'vtab_best')
               if not o.startswith(('model.head.num_classes', 'train_cfg.val_interval'))]
    rows = table.main([config, '--data-root', vtab_root, '--work-dir', str(tmp_path),
                       '--tasks', TASK, '--report', 'best', '--cfg-options'] + options)
    name = 'dyt-distill-r0.5-d8_vit-b16_vtab1k-best'
    assert 0.0 <= rows[name][TASK] <= 100.0
    assert glob.glob(str(tmp_path / name / TASK / 'best_accuracy_top1_epoch_1.pth'))
    out = capsys.readouterr().out
    assert 'Top-1: best validation accuracy over the epochs' in out and f'| {name} |' in out
