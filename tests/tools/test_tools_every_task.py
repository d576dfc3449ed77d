"""Issue 15, item 17: benchmark.py and visualize_tokens.py on seg and video
configs (cls is in test_analysis_tools.py), like with like."""
import re
import textwrap
from pathlib import Path

import pytest

import train_runs

pytest.importorskip('mmseg')
pytest.importorskip('mmaction')

ROOT = Path(__file__).resolve().parents[2]
ARCH = 'arch=dict(_delete_=True, embed_dims=48, num_layers=4, num_heads=3, feedforward_channels=96)'
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


def run_tool(name, argv, capsys):
    """``tools/analysis_tools/{name}.py``'s ``main(argv)``; what it printed."""
    train_runs.load_tool(f'analysis_tools/{name}').main([str(a) for a in argv])
    return capsys.readouterr().out


def write_config(tmp_path, task):
    path = tmp_path / f'tiny_{task}.py'
    path.write_text(textwrap.dedent(CONFIGS[task]))
    return path


@pytest.mark.parametrize('task, model, shape', [
    ('seg', 'DyTEncoderDecoder', r'\(3, 32, 32\)'),
    ('video', 'DyTRecognizer3D', r'\(1, 3, 2, 32, 32\)')])
def test_item17_benchmark_compares_like_with_like(tmp_path, capsys, task, model, shape):
    out = run_tool('benchmark', [write_config(tmp_path, task), '--batch-size', '2',
                                    '--repeats', '2', '--warmup', '0', '--threads', '1',
                                    '--force-rate', '0.5'], capsys)
    assert f'baseline: the same {model} with a dense backbone' in out
    assert re.search(rf'input {shape}', out)
    assert re.search(r'batch 2: forced activation rates 0\.5', out)
    assert re.search(r'batch 2: ratio \d+\.\d+', out)


@pytest.mark.parametrize('task', ['seg', 'video'])
def test_item17_visualize_tokens(tmp_path, capsys, task):
    from skimage import data, io
    image = tmp_path / 'astronaut.png'
    io.imsave(image, data.astronaut())
    out_dir = tmp_path / 'vis'
    out = run_tool('visualize_tokens', [write_config(tmp_path, task), image,
                                           '--out-dir', out_dir], capsys)
    assert 'astronaut: activation rate' in out
    assert sorted(p.name for p in out_dir.iterdir()) == ['activation_rates.png',
                                                          'astronaut_layers.png']
