"""benchmark.py --compare over several batch sizes (the latency sweep of
Dyn-Adapter Table 2): one img/s table by batch size, early-exit models timed
in their dynamic inference at their thresholds."""
import re

import pytest
import torch

pytest.importorskip('mmpretrain')

from mmdyt.analysis.flops import measure_flops  # noqa: E402
from mmdyt.analysis.timing import DynamicInference, timed_form  # noqa: E402
from train_runs import ROOT, load_tool  # noqa: E402

CONFIGS = [str(ROOT / 'configs/cls' / path) for path in (
    'dyn_repadapter/dyn-repadapter_vit-b16_vtab1k.py', 'dyn_lora/dyn-lora_vit-b16_vtab1k.py')]
# ViT-Ti on 32 x 32 patches of 224 x 224 images; every image leaves at the first exit
TINY = ['model.backbone.arch=t', 'model.backbone.patch_size=32',
        'model.backbone.pretrained=None', 'model.thresholds=[0.0,1.0,1.0,1.0]']


def early_exit_model(thresholds):
    from mmdyt.analysis import build_model, load_config
    cfg = load_config(CONFIGS[0], {'model.backbone.arch': 't', 'model.backbone.patch_size': 32,
                                   'model.backbone.pretrained': None})
    model = build_model(cfg)
    model.thresholds = thresholds
    return model


def test_early_exit_models_are_timed_and_counted_at_their_thresholds():
    x = torch.randn(3, 3, 224, 224)
    with torch.no_grad():
        exits_at_first = measure_flops(early_exit_model([0.0, 1.0, 1.0, 1.0]), x)
        model = early_exit_model([1.0, 1.0, 1.0, 1.0])
        full = measure_flops(model, x)
        timed = timed_form(model)
        assert isinstance(timed, DynamicInference)
        torch.testing.assert_close(timed(x), torch.stack([s.pred_score for s in model.predict(x)]))
    assert exits_at_first['exit_histogram'] == [3, 0, 0, 0]
    assert full['exit_histogram'] == [0, 0, 0, 3]
    assert exits_at_first['backbone'] < 0.35 * full['backbone']  # 3 of 12 blocks + embedding
    assert 0 < exits_at_first['rest'] < full['rest']  # one head instead of four


def test_sweep_table_over_batch_sizes(capsys):
    load_tool('analysis_tools/benchmark').main(
        [CONFIGS[0], '--compare', CONFIGS[1], '--batch-size', '1', '2', '--repeats', '1',
         '--warmup', '0', '--threads', '1', '--cfg-options'] + TINY)
    out = capsys.readouterr().out
    assert re.search(r'dyn-repadapter_vit-b16_vtab1k: dynamic inference at thresholds '
                     r'\[0\.0, 1\.0, 1\.0, 1\.0\], exits \[2, 0, 0, 0\] of 2', out)
    sweep = out.split('img/s by batch size (ratio to the dense baseline)')[1]
    assert '| method | batch 1 | batch 2 |' in sweep
    rows = re.findall(r'^\| (\S[^|]*?) \| [\d.]+ \(([\d.]+)\) \| [\d.]+ \(([\d.]+)\) \|$',
                      sweep, re.M)
    assert [r[0] for r in rows] == ['dense ViT (baseline)', 'dyn-repadapter_vit-b16_vtab1k',
                                    'dyn-lora_vit-b16_vtab1k']
    assert rows[0][1:] == ('1.00', '1.00')
