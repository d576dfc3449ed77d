"""benchmark.py (every mode) and visualize_tokens.py on seg and video
configs (cls is in test_analysis_tools.py), like with like."""
import re
import textwrap
from pathlib import Path

import pytest

import train_runs
from tiny_dyt import tiny_arch_text

pytest.importorskip('mmseg')
pytest.importorskip('mmaction')

ROOT = Path(__file__).resolve().parents[2]
ARCH = f'arch={tiny_arch_text(4)}'
CONFIGS = {
    'seg': f'''
        _base_ = ['{ROOT}/configs/seg/dyt/dyt-r0.5_vit-b16_upernet_ade20k-512x512.py']
        norm_cfg = dict(type='BN', requires_grad=True)
        model = dict(
            data_preprocessor=dict(size=(32, 32)),
            backbone=dict({ARCH}, img_size=32, patch_size=8, out_indices=(0, 1, 2, 3),
                          adapter_dim=8, pretrained=None),
            neck=dict(embed_dim=48, norm_cfg=norm_cfg),
            decode_head=dict(in_channels=[48] * 4, channels=16, norm_cfg=norm_cfg),
            auxiliary_head=dict(in_channels=48, channels=8, norm_cfg=norm_cfg))
        ''',
    'video': f'''
        _base_ = ['{ROOT}/configs/video/dyt/dyt-r0.5_vit-b16_u8_ssv2.py']
        model = dict(
            backbone=dict({ARCH}, img_size=32, patch_size=8, adapter_dim=8, pretrained=None),
            cls_head=dict(in_channels=48, num_heads=3))
        test_pipeline = [dict(type='UniformSample', clip_len=2, num_clips=1, test_mode=True)]
        ''',
}


def run_tool(name, argv, capsys, patch=None):
    """``tools/analysis_tools/{name}.py``'s ``main(argv)``; what it printed.
    ``patch(module)`` may change the loaded tool first."""
    tool = train_runs.load_tool(f'analysis_tools/{name}')
    if patch is not None:
        patch(tool)
    tool.main([str(a) for a in argv])
    return capsys.readouterr().out


def write_config(tmp_path, task, name=None, adapter_dim=8):
    path = tmp_path / f'{name or "tiny_" + task}.py'
    path.write_text(textwrap.dedent(CONFIGS[task]).replace('adapter_dim=8',
                                                           f'adapter_dim={adapter_dim}'))
    return path


class _ListQueue(list):
    put = list.append


def training_in_process(tool):
    """The training benchmark's workers in this process (a spawned one
    imports the stack again, seconds per model)."""
    def run(*args):
        queue = _ListQueue()
        tool._training_worker(*args, queue)
        return queue[0]

    tool._in_subprocess = run


@pytest.mark.parametrize('task, model, shape', [
    ('seg', 'DyTEncoderDecoder', r'\(3, 32, 32\)'),
    ('video', 'DyTRecognizer3D', r'\(1, 3, 2, 32, 32\)')])
def test_benchmark_compares_like_with_like(tmp_path, capsys, task, model, shape):
    out = run_tool('benchmark', [
        write_config(tmp_path, task), '--batch-size', '2', '--repeats', '2', '--warmup', '0',
        '--threads', '1', '--force-rate', '0.5'], capsys)
    assert f'baseline: the same {model} with a dense backbone' in out
    assert re.search(rf'input {shape}', out)
    assert re.search(r'batch 2: forced activation rates 0\.5', out)
    assert re.search(r'batch 2: ratio \d+\.\d+', out)


@pytest.mark.parametrize('task', ['seg', 'video'])
def test_visualize_tokens_writes_the_rate_figures(tmp_path, capsys, task):
    from skimage import data, io
    image = tmp_path / 'astronaut.png'
    io.imsave(image, data.astronaut())
    out_dir = tmp_path / 'vis'
    out = run_tool('visualize_tokens', [write_config(tmp_path, task), image, '--out-dir', out_dir],
                   capsys)
    assert 'astronaut: activation rate' in out
    assert sorted(p.name for p in out_dir.iterdir()) == [
        'activation_rates.png', 'astronaut_layers.png']


BASELINES = dict(seg='DyTEncoderDecoder', video='DyTRecognizer3D')


@pytest.mark.parametrize('task', ['seg', 'video'])
def test_benchmark_compare_against_the_dense_task_model(tmp_path, capsys, task):
    other = write_config(tmp_path, task, name=f'adapter4_{task}', adapter_dim=4)
    out = run_tool('benchmark', [
        write_config(tmp_path, task), '--compare', other, '--batch-size', '2', '--repeats', '1',
        '--warmup', '0', '--threads', '1', '--force-rate', '0.5'], capsys)
    model = BASELINES[task]
    assert f'baseline: the same {model} with a dense backbone' in out
    rows = {name: (float(gflops), float(params)) for name, gflops, params in re.findall(
        r'^\| (.+?) \| ([\d.e+-]+) \| ([\d.e+-]+) \| [\d.]+ \(spread', out, re.MULTILINE)}
    assert set(rows) == {f'dense {model} (baseline)', f'tiny_{task}', f'adapter4_{task}'}
    # significant digits, not two decimals: a tiny model's GFLOPs and
    # trainable parameters (M) are not printed as 0.00
    assert all(gflops > 0 and params > 0 for gflops, params in rows.values()), out
    assert rows[f'tiny_{task}'][1] > rows[f'adapter4_{task}'][1], out


@pytest.mark.parametrize('task', ['seg', 'video'])
def test_benchmark_training_against_full_tuning_of_the_task_model(
        tmp_path, capsys, task):
    out = run_tool('benchmark', [
        write_config(tmp_path, task), '--train', '--batch-size', '2', '--repeats', '1',
        '--threads', '1'], capsys, patch=training_in_process)
    assert f'baseline: full tuning of the same {BASELINES[task]}' in out
    trainable = dict(re.findall(r'batch 2: (model|baseline) \((\d+) trainable', out))
    assert int(trainable['model']) < int(trainable['baseline'])
    # in this process the RSS high-water mark may predate the baseline's step
    assert re.search(r'step time ratio [\d.]+, peak memory ratio ([\d.]+|n/a \(no peak)', out)


@pytest.mark.parametrize('task, per_sample, frames', [
    ('seg', 'image', 1), ('video', 'frame, 2 frames per clip', 2)])
def test_benchmark_kernels_at_the_token_counts_of_the_task(
        tmp_path, capsys, task, per_sample, frames):
    out = run_tool('benchmark', [
        write_config(tmp_path, task), '--kernels', '--batch-size', '1', '--repeats', '1',
        '--warmup', '0', '--threads', '1'], capsys)
    tokens = 1 + (32 // 8)**2
    assert f'{tokens} tokens per {per_sample}, 9 at rate 0.5' in out
    rows = re.findall(r'^(qkv|proj|fc1\+gelu|fc2) +(\d+) ', out, re.MULTILINE)
    assert sorted({int(r[1]) for r in rows}) == [9 * frames, tokens * frames]


def test_benchmark_compare_refuses_mixed_tasks(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"--compare: configs of different tasks \(\{'tiny_seg': "
                       r"'segmentation', 'tiny_video': 'video'\}\)"):
        run_tool('benchmark', [write_config(tmp_path, 'seg'), '--compare',
                               write_config(tmp_path, 'video'), '--batch-size', '1',
                               '--repeats', '1'], capsys)


@pytest.mark.parametrize('mode', [[], ['--compare']])
def test_benchmark_early_exit_recognizer_asks_for_a_baseline(tmp_path, capsys, mode):
    config = tmp_path / 'early_exit_video.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = ['{ROOT}/configs/video/dyn_adapter/dyn-adapter_vit-b16_u8_ssv2.py']
        model = dict(backbone=dict({ARCH}, img_size=32, patch_size=8, pretrained=None),
                     num_heads=3, exit_interval=2)
        '''))
    if mode:
        other = tmp_path / 'other_early_exit_video.py'
        other.write_text(config.read_text())
        mode = ['--compare', other]
    name = '--compare' if mode else 'the default mode'
    with pytest.raises(ValueError, match=rf'{name} on {config} \(video, EarlyExitRecognizer3D\): '
                       'an early-exit recognizer has no dense recognizer in its config'):
        run_tool('benchmark', [config, *mode, '--batch-size', '1', '--repeats', '1'], capsys)


def test_get_flops_reports_video_per_view_as_the_efficiency_metric(tmp_path, capsys):
    """get_flops.py and tools/test.py's efficiency/gflops share one unit for
    video: GFLOPs per view, the views per video named."""
    import re

    import torch
    from mmaction.structures import ActionDataSample

    from mmdyt.analysis import build_model, load_config
    config = write_config(tmp_path, 'video')
    out = run_tool('get_flops', [config, '--num-images', 2, '--shape', 3, 3, 2, 32, 32], capsys)
    per_view = float(re.search(r'G per view \(3 views per video[^)]*\) \((\d+) multiply-adds',
                               out).group(1))
    model = build_model(load_config(str(config)))
    torch.manual_seed(0)
    with torch.no_grad():
        predictions = model.predict(torch.randn(2, 3, 3, 2, 32, 32),
                                    [ActionDataSample() for _ in range(2)])
    metric = sum(p.dyt_flops for p in predictions) / 2
    assert per_view == pytest.approx(metric, rel=0.05)
