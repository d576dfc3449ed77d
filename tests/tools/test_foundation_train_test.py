"""Two training iterations and a test run of the foundation-model configs
through tools/train.py and tools/test.py, on data written in the datasets'
real formats: DyT on DINOv2-B/14 (VTAB-1K) and SigLIP-B/16 (VTAB-1K), the
DINOv2-B/14 DyT UperNet (ADE20K) and DyT on CLIP ViT-B/16 (K400). Each real
config is inherited with a 48-wide ViT that keeps the family's settings
(patch, LayerScale, pre-norm and QuickGELU, no class token with attention
pooling, normalisation) and no checkpoint. The SigLIP, DINOv2 UperNet and
CLIP K400 configs also train through mmpretrain's, mmseg's and mmaction2's
own tools/train.py."""
import glob
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip('mmpretrain')
pytest.importorskip('mmseg')
pytest.importorskip('mmaction')

from dataset_writers import write_vtab_task  # noqa: E402
from train_runs import load_tool, run  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY_ARCH = 'dict(_delete_=True, embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=96)'
TASK = 'eurosat'

pytestmark = pytest.mark.usefixtures('one_thread')

VTAB_CONFIG = '''
_base_ = [{base!r}]
model = dict(
    backbone=dict(arch={arch}, img_size={size}, pretrained=None),
    head=dict(in_channels=48, num_classes=10))
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=({size}, {size}), interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={root!r}, task={task!r}, pipeline=pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={root!r}, task={task!r}, pipeline=pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=10)
default_hooks = dict(logger=dict(interval=1))
randomness = dict(seed=0)
'''


# 64 x 64 crops padded by the backbone to 70 = 5 x 14: img_size 70 is the
# grid of a crop, as 518 is for the real config's 512 crops.
def dinov2_upernet_config(tmp_path):
    """The DINOv2 UperNet DyT config with a 4-block tiny ViT (img_size 70: 5 x 5
    patches of 14) on ADE20K-format data (mmdyt's seg tool test's tiny config)."""
    from test_seg_train_test import tiny_config, write_ade20k
    return tiny_config(tmp_path, write_ade20k(tmp_path / 'ade'), img_size=70,
                       base=ROOT / 'configs/seg/dyt/dyt-r0.5_dinov2-b14_upernet_ade20k-512x512.py')


def work_log(work_dir):
    return Path(glob.glob(str(Path(work_dir) / '*' / '*.log'))[0]).read_text()


def train_then_test(config, work_dir, checkpoint):
    """``tools/train.py`` then ``tools/test.py`` of ``checkpoint`` in this
    process; the training log and the test metrics. Each run has its own
    experiment name: runs started in the same second would otherwise share
    mmengine's logger (and log file)."""
    name = Path(config).stem
    load_tool('train').main([str(config), '--work-dir', str(work_dir), '--cfg-options',
                             f'experiment_name={name}_train'])
    log = work_log(work_dir)
    assert (Path(work_dir) / checkpoint).is_file()
    metrics = load_tool('test').main([str(config), str(Path(work_dir) / checkpoint),
                                      '--work-dir', str(work_dir), '--cfg-options',
                                      f'experiment_name={name}_test'])
    return log, metrics


@pytest.fixture(scope='module')
def vtab_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('vtab-1k'))
    write_vtab_task(root, TASK, {'train800val200': [0, 3, 7, 9], 'test': [1, 3, 5, 9]})
    return root


@pytest.mark.parametrize('config, size', [
    ('configs/cls/dyt/dyt-r0.5-d8_dinov2-b14_vtab1k.py', 56),  # 4 x 4 patches of 14
    ('configs/cls/dyt/dyt-r0.5-d8_siglip-b16_vtab1k.py', 64),  # 4 x 4 patches of 16
])
def test_vtab_dyt_train_two_iters_and_test(config, size, vtab_root, tmp_path):
    path = tmp_path / f'tiny_{Path(config).stem}.py'
    path.write_text(VTAB_CONFIG.format(base=str(ROOT / config), arch=TINY_ARCH, size=size,
                                       root=vtab_root, task=TASK))
    log, metrics = train_then_test(path, tmp_path / 'work', 'epoch_1.pth')
    assert 'Epoch(train) [1][2/2]' in log
    assert 'loss_rate:' in log and 'rate_layer1:' in log and 'gflops:' in log
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0
    assert metrics['efficiency/gflops'] > 0
    assert 0.0 <= metrics['efficiency/activation_rate'] <= 1.0


def test_dinov2_upernet_dyt_train_two_iters_and_test_miou(tmp_path):
    path = dinov2_upernet_config(tmp_path)
    log, metrics = train_then_test(path, tmp_path / 'work', 'iter_2.pth')
    assert re.search(r'Iter\(train\) \[2/2\].*decode\.loss_ce: [\d.]+.*loss_rate: [\d.]+', log)
    assert 0.0 <= metrics['mIoU'] <= 100.0
    assert 0.0 < metrics['efficiency/activation_rate'] <= 1.0
    assert metrics['efficiency/gflops'] > 0


def video_config(data_dir):
    """The CLIP K400 DyT config (patch 16 kept) with a tiny ViT, 4 frames of
    32 x 32 and the lists of ``data_dir`` (mmdyt's video tool test's tiny
    config)."""
    from test_video_train_test import tiny_config
    return tiny_config(data_dir, 'val.txt', patch_size=None,
                       config=ROOT / 'configs/video/dyt/dyt-r0.5_clip-b16_8x16x1_k400.py')


def test_clip_k400_dyt_train_two_iters_and_test(k400_dir, tmp_path):
    path = video_config(k400_dir)
    log, metrics = train_then_test(path, tmp_path / 'work', 'epoch_1.pth')
    assert 'Epoch(train) [1][2/2]' in log and 'loss_rate' in log
    assert 0.0 <= metrics['acc/top1'] <= 1.0
    assert metrics['acc/top5'] == 1.0  # 5 classes
    assert metrics['efficiency/gflops'] > 0
    assert 0.0 <= metrics['efficiency/activation_rate'] <= 1.0


def test_siglip_dyt_trains_through_mmpretrain_tools(vtab_root, tmp_path):
    """mmpretrain's own tools/train.py (shipped in its package) runs the
    config: ``custom_imports`` brings mmdyt in."""
    import mmpretrain
    script = Path(mmpretrain.__file__).parent / '.mim' / 'tools' / 'train.py'
    if not script.is_file():
        pytest.skip(f'{script} is not installed')
    path = tmp_path / 'tiny.py'
    path.write_text(VTAB_CONFIG.format(
        base=str(ROOT / 'configs/cls/dyt/dyt-r0.5-d8_siglip-b16_vtab1k.py'), arch=TINY_ARCH,
        size=32, root=vtab_root, task=TASK))
    _, out = run([sys.executable, script, path, '--work-dir', tmp_path / 'work'], cwd=tmp_path)
    assert 'Epoch(train) [1][2/2]' in out and 'loss_rate:' in out
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()


def own_train_script(package):
    """The toolbox's own tools/train.py, shipped in its package."""
    module = __import__(package)
    script = Path(module.__file__).parent / '.mim' / 'tools' / 'train.py'
    if not script.is_file():
        pytest.skip(f'{script} is not installed')
    return script


def test_dinov2_upernet_trains_through_mmseg_tools(tmp_path):
    path = dinov2_upernet_config(tmp_path)
    _, out = run([sys.executable, own_train_script('mmseg'), path, '--work-dir',
                  tmp_path / 'work'], cwd=tmp_path)
    assert re.search(r'Iter\(train\) \[2/2\].*loss_rate: [\d.]+', out)
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()


def test_clip_k400_trains_through_mmaction2_tools(k400_dir, tmp_path):
    path = video_config(k400_dir)
    _, out = run([sys.executable, own_train_script('mmaction'), path, '--work-dir',
                  tmp_path / 'work'], cwd=tmp_path)
    assert 'Epoch(train) [1][2/2]' in out and 'loss_rate' in out
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()
