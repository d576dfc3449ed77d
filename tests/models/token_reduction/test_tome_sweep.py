"""tools/analysis_tools/tome_sweep.py on the demo's ViT after a short
pretraining (tools/train.py on a tiny Fashion-MNIST in the real IDX format):
r=0 reproduces mmpretrain's own model exactly, merging cuts the FLOPs."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch

pytest.importorskip('mmpretrain')

from mmdyt.analysis import build_model, load_config  # noqa: E402
from mmdyt.datasets.idx import IDX_SPLIT_FILES  # noqa: E402
from dataset_writers import write_idx  # noqa: E402
from train_runs import load_tool  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIG = osp.join(ROOT, 'configs', 'demo', 'pretrain_vit-6x96-p4_fashion-mnist-seen5.py')


def write_fashion_mnist(root, num=32):
    rng = np.random.default_rng(0)
    for split in ('train', 'test'):
        images, labels = IDX_SPLIT_FILES[split]
        write_idx(osp.join(root, images + '.gz'),
                  rng.integers(0, 256, (num, 28, 28), dtype=np.uint8))
        write_idx(osp.join(root, labels + '.gz'), np.arange(num, dtype=np.uint8) % 10)
    return root


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """(cfg-options, checkpoint) of a 2-iteration pretraining (32 images,
    batch 16, one epoch)."""
    root = write_fashion_mnist(str(tmp_path_factory.mktemp('fashion')))
    work_dir = str(tmp_path_factory.mktemp('pretrain'))
    options = [f'{loader}.dataset.data_root={root}' for loader in
               ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    options += ['train_dataloader.batch_size=16', 'test_dataloader.batch_size=16',
                'val_dataloader.batch_size=16', 'default_hooks.logger.interval=1']
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        load_tool('train').main([CONFIG, '--work-dir', work_dir, '--cfg-options'] + options)
    finally:
        torch.set_num_threads(threads)
    return options, sorted(glob.glob(osp.join(work_dir, '*.pth')))[-1]


def test_sweep_prints_accuracy_flops_and_speed(pretrained, capsys):
    options, checkpoint = pretrained
    sweep = load_tool('analysis_tools/tome_sweep')
    rows = sweep.main([CONFIG, checkpoint, '--r', '2', '5', '--batch-size', '16',
                       '--repeats', '2', '--threads', '1', '--cfg-options'] + options)
    assert [row['r'] for row in rows] == [0, 2, 5]
    assert rows[0]['gflops'] > rows[1]['gflops'] > rows[2]['gflops'] > 0
    assert all(0.0 <= row['top1'] <= 100.0 and row['img_s'] > 0 for row in rows)
    assert rows[0]['ratio'] == 1.0  # r=0 is the reference
    out = capsys.readouterr().out
    assert '| r | top-1 | GFLOPs | img/s | ratio |' in out and '| 5 |' in out


def test_r0_reproduces_the_trained_mmpretrain_model(pretrained):
    options, checkpoint = pretrained
    sweep = load_tool('analysis_tools/tome_sweep')
    cfg = load_config(CONFIG, dict(o.split('=', 1) for o in options))
    original = build_model(cfg, checkpoint)
    dense = sweep.build_sweep(cfg, checkpoint, [0])[0]
    images = torch.randn(3, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(dense(images, mode='tensor'), original(images, mode='tensor'))
