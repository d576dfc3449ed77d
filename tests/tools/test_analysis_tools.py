"""Command line runs of get_flops.py, benchmark.py and visualize_tokens.py on
tiny ViTs derived from the real ViT-B/16 classification configs."""
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tiny_dyt
from train_runs import run_script

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / 'tools' / 'analysis_tools'
ARCH = tiny_dyt.tiny_arch(num_layers=2)
C, LAYERS, HIDDEN = ARCH['embed_dims'], ARCH['num_layers'], ARCH['feedforward_channels']
PATCH, SIZE, N = tiny_dyt.PATCH_SIZE, tiny_dyt.IMG_SIZE, tiny_dyt.NUM_TOKENS
CLASSES = 3


def write_config(tmp_path, base, data_root=None, name='tiny.py'):
    """A tiny ViT config inheriting from a real one, optionally reading an
    image folder (mmpretrain CustomDataset layout) as its test set."""
    text = f'''
        _base_ = ['{ROOT / base}']
        model = dict(
            backbone=dict(arch={tiny_dyt.tiny_arch_text(LAYERS)},
                          img_size={SIZE}, patch_size={PATCH}, pretrained=None),
            head=dict(in_channels={C}, num_classes={CLASSES}))
        '''
    if data_root:
        text += f'''
        test_dataloader = dict(
            _delete_=True, batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(type='CustomDataset', data_root='{data_root}', pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=({SIZE}, {SIZE})),
                dict(type='PackInputs')]))
        '''
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def run_tool(name, argv, capsys):
    run_script('analysis_tools/' + name[:-len('.py')], argv)
    return capsys.readouterr().out


def dense_flops():
    """Hand count of the tiny dense ViT + linear head, multiply-adds."""
    block = 4 * N * C * C + 2 * N * N * C + 2 * N * C * HIDDEN + 2 * 5 * C * N
    return (N - 1) * C * 3 * PATCH**2 + LAYERS * block + 5 * C * N + C * CLASSES


@pytest.fixture
def image_folder(tmp_path):
    from skimage import data, io
    for i, cls in enumerate(['a', 'b']):
        (tmp_path / 'images' / cls).mkdir(parents=True)
        io.imsave(tmp_path / 'images' / cls / f'{i}.png', data.astronaut()[::8, ::8])
    return tmp_path / 'images'


def test_get_flops_dense_matches_hand_count_on_test_images(tmp_path, image_folder, capsys):
    config = write_config(tmp_path, 'configs/cls/full/full_vit-b16_cifar100.py',
                          data_root=image_folder)
    out = run_tool('get_flops.py', [config, '--num-images', 2], capsys)
    assert 'Input: 2 samples of the test set' in out
    flops = float(re.search(r'G per sample \((\d+) multiply-adds', out).group(1))
    assert flops == dense_flops()
    total = int(re.search(r'Params: ([\d.]+) M total', out).group(1).replace('.', ''))
    assert 'backbone.block1' in out and 'head' in out
    assert total > 0


def test_get_flops_dyt_random_input_and_rates(tmp_path, capsys):
    config = write_config(tmp_path, 'configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py')
    out = run_tool('get_flops.py', [config, '--num-images', 3, '--batch-size', 2], capsys)
    assert 'random input (3, 32, 32) x 3 (test set unavailable' in out
    rates = [float(r) for r in re.findall(r'rate mlp ([\d.]+)', out)]
    assert len(rates) == LAYERS
    flops = float(re.search(r'G per sample \((\d+) multiply-adds', out).group(1))
    # consistent with the rates: the MLP FLOPs scale with the active patches
    mlp_saved = sum((1 - r) * (N - 1) * (2 * C * HIDDEN + 5 * C) for r in rates)
    extra = LAYERS * (2 * N * C * 64 + N * C)  # adapters d=64 and gates
    assert flops == pytest.approx(dense_flops() - mlp_saved + extra, rel=1e-3)
    assert re.search(r'Params: [\d.]+ M total, 0\.0\d+ M trainable', out)


def test_benchmark_prints_ratio(tmp_path, capsys):
    config = write_config(tmp_path, 'configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py')
    out = run_tool('benchmark.py', [config, '--batch-size', 1, 2, '--repeats', 1,
                                    '--force-rate', 0.5, '--threads', 1], capsys)
    assert 'batch 2: forced activation rates 0.500' in out
    ratios = re.findall(r'batch (\d): ratio ([\d.]+) \(baseline time / model time', out)
    assert [r[0] for r in ratios] == ['1', '2'] and all(float(r[1]) > 0 for r in ratios)
    assert re.search(r'batch 1: baseline: [\d.]+ img/s, latency', out)
    assert 'kernels: aten (default) on both models' in out


@pytest.mark.parametrize('broken', [False, True])
def test_benchmark_fuse_cpu_applies_to_both_models(tmp_path, capsys, monkeypatch, broken):
    import torch

    import mmdyt.deploy.cpu as cpu
    if broken:
        def no_primitive(*args):
            raise RuntimeError('could not create a primitive descriptor')
        monkeypatch.setattr(cpu, '_linear_pointwise', no_primitive)
    elif cpu.probe_onednn(torch.float32):
        pytest.skip(cpu.probe_onednn(torch.float32))
    config = write_config(tmp_path, 'configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py')
    out = run_tool('benchmark.py', [config, '--batch-size', 1, '--repeats', 1, '--fuse-cpu',
                                    '--threads', 1], capsys)
    if broken:
        assert ('kernels: aten on both models, fuse_for_cpu fell back (model: oneDNN not '
                'used, aten kernels kept: torch.float32: could not create') in out
    else:
        assert re.search(r'kernels: oneDNN via fuse_for_cpu on both models, calls from '
                         r'33554432 multiply-adds \(model \d+ linear layers \(2 with GELU '
                         r'fused\), baseline 8 linear layers \(2 with GELU fused\)\)', out)
    assert 'batch 1: ratio' in out


def test_benchmark_against_baseline_config(tmp_path, capsys):
    config = write_config(tmp_path, 'configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py')
    baseline = write_config(tmp_path, 'configs/cls/full/full_vit-b16_cifar100.py',
                            name='full.py')
    out = run_tool('benchmark.py', [config, '--baseline', baseline, '--batch-size', 1,
                                    '--repeats', 1, '--force-rate', 1.0], capsys)
    assert 'forced activation rates 1.000' in out and 'batch 1: ratio' in out


def test_benchmark_training_mode(tmp_path, capsys):
    config = write_config(tmp_path, 'configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py')
    out = run_tool('benchmark.py', [config, '--train', '--batch-size', 2, '--repeats', 1,
                                    '--threads', 1], capsys)
    trainable = dict(re.findall(r'batch 2: (model|baseline) \((\d+) trainable', out))
    assert int(trainable['model']) < int(trainable['baseline'])
    assert re.search(r'step time ratio [\d.]+, peak memory ratio [\d.]+', out)


def test_visualize_tokens_writes_pngs(tmp_path, capsys):
    from skimage import data, io
    image = tmp_path / 'astronaut.png'
    io.imsave(image, data.astronaut())
    config = write_config(tmp_path, 'configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py')
    out_dir = tmp_path / 'vis'
    out = run_tool('visualize_tokens.py', [config, image, '--out-dir', out_dir,
                                           '--per-layer'], capsys)
    assert 'astronaut: activation rate' in out
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == ['activation_rates.png', 'astronaut_layer0.png', 'astronaut_layer1.png',
                     'astronaut_layers.png']
    grid = io.imread(out_dir / 'astronaut_layers.png')
    assert grid.ndim == 3 and grid.shape[0] > 100 and np.ptp(grid) > 0


def test_visualize_tokens_missing_file(tmp_path, capsys):
    config = write_config(tmp_path, 'configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py')
    with pytest.raises(FileNotFoundError, match='no such input file: .*nope.png'):
        run_tool('visualize_tokens.py', [config, tmp_path / 'nope.png',
                                         '--out-dir', tmp_path], capsys)


def test_benchmark_kernels_table(tmp_path, capsys):
    config = write_config(tmp_path, 'configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py')
    out = run_tool('benchmark.py', [config, '--kernels', '--batch-size', 1, 2, '--repeats', 1,
                                    '--threads', 1], capsys)
    assert f'{N} tokens per image, 9 at rate 0.5' in out
    rows = re.findall(r'^(qkv|proj|fc1\+gelu|fc2) +(\d+) +([\d.]+) +([\d.]+) +([\d.]+) +'
                      r'[\d.]+  aten$', out, re.MULTILINE)
    assert sorted({int(r[1]) for r in rows}) == [9, N, 18, 2 * N]
    assert len(rows) == 16
    for _, _, aten, onednn, ratio in rows:
        assert float(ratio) == pytest.approx(float(aten) / float(onednn), abs=0.02, rel=0.05)


def test_get_flops_at_a_forced_rate(tmp_path, capsys):
    config = write_config(tmp_path, 'configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py')
    out = run_tool('get_flops.py', [config, '--num-images', 1, '--force-rate', 0.5], capsys)
    assert 'gates set to activate 0.5 of the first batch' in out
    assert re.findall(r'rate mlp ([\d.]+)', out) == ['0.500'] * LAYERS
    flops = float(re.search(r'G per sample \((\d+) multiply-adds', out).group(1))
    mlp_saved = LAYERS * (N - 1) // 2 * (2 * C * HIDDEN + 5 * C)
    extra = LAYERS * (2 * N * C * 64 + N * C)  # adapters d=64 and gates
    assert flops == dense_flops() - mlp_saved + extra


def test_get_flops_paper_convention_leaves_out_attention_matmuls_and_norms(
        tmp_path, image_folder, capsys):
    """Dyn-Adapter's tables count 16.8 G for ViT-B/16 (mmdyt 17.58 G): only
    the linear layers and the patch embedding."""
    config = write_config(tmp_path, 'configs/cls/full/full_vit-b16_cifar100.py',
                          data_root=image_folder)
    out = run_tool('get_flops.py', [config, '--num-images', 2, '--convention', 'paper'], capsys)
    flops = float(re.search(r'G per sample \((\d+) multiply-adds', out).group(1))
    assert 'FLOPs (paper convention)' in out
    assert flops == dense_flops() - LAYERS * (2 * N * N * C + 2 * 5 * C * N) - 5 * C * N
