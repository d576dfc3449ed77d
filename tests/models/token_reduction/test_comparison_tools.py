"""benchmark.py --compare (several configs against the dense baseline in one
table) and get_flops.py's per-block token counts, on tiny ViTs."""
import re

import pytest
import torch

pytest.importorskip('mmpretrain')

from mmdyt.analysis.timing import compare_speed  # noqa: E402
from train_runs import ROOT, load_tool  # noqa: E402

CONFIGS = [str(ROOT / 'configs' / 'cls' / path) for path in (
    'tome/tome-r8_vit-b16_vtab1k.py', 'dyt/dyt-r0.5-tome-r8-d8_vit-b16_vtab1k.py')]
# ViT-Ti (12 blocks, width 192) on 8 x 8 patches of 64 x 64 images: 65 tokens
TINY = ['model.backbone.arch=t', 'model.backbone.img_size=64', 'model.backbone.patch_size=8',
        'model.backbone.pretrained=None', 'model.head.in_channels=192',
        'model.backbone.token_reduction.r=2']


def test_compare_speed_rows():
    models = {'a': torch.nn.Linear(4, 4), 'b': torch.nn.Linear(4, 4)}
    rows = compare_speed(models, torch.nn.Linear(4, 4), torch.randn(3, 4), repeats=3)
    assert list(rows) == ['baseline', 'a', 'b']
    assert rows['baseline']['ratio'] == 1.0
    assert all(row['throughput'] > 0 and row['ratio_min'] <= row['ratio'] <= row['ratio_max']
               for row in rows.values())
    with pytest.raises(ValueError, match="'baseline' names the baseline"):
        compare_speed({'baseline': models['a']}, models['b'], torch.randn(3, 4))


def test_benchmark_compare_prints_one_table(capsys):
    load_tool('analysis_tools/benchmark').main(
        [CONFIGS[0], '--compare', CONFIGS[1], '--batch-size', '2', '--repeats', '2',
         '--threads', '1', '--force-rate', '0.5', '--cfg-options'] + TINY)
    out = capsys.readouterr().out
    rows = re.findall(r'^\| (\S[^|]*?) \| ([\d.]+) \| ([\d.]+) \| [\d.]+ \(spread', out, re.M)
    assert [r[0] for r in rows] == ['dense ViT (baseline)', 'tome-r8_vit-b16_vtab1k',
                                    'dyt-r0.5-tome-r8-d8_vit-b16_vtab1k']
    dense, tome, dyt = (float(r[1]) for r in rows)
    assert dense > tome > dyt > 0
    params = [float(r[2]) for r in rows]
    assert params[0] == params[1] > params[2] > 0  # full tuning vs adapters + gates


def test_benchmark_compare_refuses_train():
    with pytest.raises(SystemExit):
        load_tool('analysis_tools/benchmark').main([CONFIGS[0], '--compare', CONFIGS[1],
                                                    '--train'])


def test_get_flops_prints_tokens_per_block(capsys):
    load_tool('analysis_tools/get_flops').main([CONFIGS[0], '--num-images', '1',
                                                '--cfg-options'] + TINY)
    out = capsys.readouterr().out
    assert 'Tokens per sample by block (entering / attention / MLP):' in out
    assert ', '.join(f'{i}: {65 - 2 * i}/{65 - 2 * i}/{63 - 2 * i}' for i in range(12)) in out
