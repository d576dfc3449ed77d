"""Dyn-Adapter for video end to end: two training iterations of the SSv2
early-exit config through tools/train.py, a test through tools/test.py
reporting accuracy, GFLOPs and the exit histogram, and the 50 % budget
config calibrating its thresholds before testing, on real clips."""
import glob
from pathlib import Path

import pytest
from mmengine.config import Config

from tiny_dyt import tiny_arch
from train_runs import load_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / 'configs/video/dyn_repadapter'
SIZES = {  # transform -> the 224-scale setting shrunk to 32 x 32 frames
    'UniformSample': dict(clip_len=4),
    'Resize': dict(scale=(-1, 32)),
    'CenterCrop': dict(crop_size=32),
    'ThreeCrop': dict(crop_size=32),
}
pytestmark = pytest.mark.usefixtures('one_thread')


def tiny_config(root, name):
    """``name`` in configs/video/dyn_repadapter with a 6-block, 48-wide ViT
    (exits after blocks 1 and 6), 4 frames of 32 x 32 and the lists in
    ``root``; calibration and test read val.txt."""
    cfg = Config.fromfile(str(CONFIGS / name))
    cfg.model.backbone.update(arch=tiny_arch(num_layers=6), img_size=32, patch_size=8,
                              pretrained=None)
    cfg.model.update(num_classes=5, num_heads=3, exit_layers=[1, 6])
    for loader, ann in (('train_dataloader', 'train.txt'), ('val_dataloader', 'val.txt'),
                        ('test_dataloader', 'val.txt')):
        cfg[loader].update(batch_size=2, num_workers=0, persistent_workers=False)
        cfg[loader].dataset.update(ann_file=str(root / ann),
                                   data_prefix=dict(video=str(root / 'videos')))
        for step in cfg[loader].dataset.pipeline:
            if step['type'] == 'Resize' and loader == 'train_dataloader':
                step.update(scale=(32, 32))
            else:
                step.update(SIZES.get(step['type'], {}))
    cfg.train_cfg.update(max_epochs=1, val_interval=10)
    cfg.randomness = dict(seed=0)  # the untrained heads' confidences sit near 1 / 5
    cfg.default_hooks.logger.interval = 1
    path = root / f'tiny_{name}'
    cfg.dump(str(path))
    return str(path)


def test_train_test_and_calibrated_budget(k400_dir):
    train, test = load_tool('train'), load_tool('test')
    config = tiny_config(k400_dir, 'dyn-repadapter_vit-b16_u8_ssv2.py')
    work_dir = str(k400_dir / 'work')
    train.main([config, '--work-dir', work_dir])
    log = open(glob.glob(f'{work_dir}/*/*.log')[0]).read()
    assert 'Epoch(train) [1][2/2]' in log
    assert 'loss_exit0:' in log and 'loss_exit1:' in log and 'lambda_shallow:' in log

    checkpoint = f'{work_dir}/epoch_1.pth'
    full = test.main([config, checkpoint, '--work-dir', work_dir])
    assert 0 <= full['acc/top1'] <= 1
    assert full['early_exit/exit1_ratio'] == 1.0  # thresholds 1.0: the last head
    budget = tiny_config(k400_dir, 'dyn-repadapter-b50_vit-b16_u8_ssv2.py')
    calibrated = test.main([budget, checkpoint, '--work-dir', work_dir])
    assert calibrated['early_exit/gflops'] <= 0.5 * full['early_exit/gflops'] + 1e-9
    assert calibrated['early_exit/exit0_ratio'] > 0
