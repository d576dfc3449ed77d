"""torch.compile of the skipping path without graph breaks
(mmdyt.deploy.compile) and the runtimes benchmark.py times in
(mmdyt.deploy.runtime: --runtime onnxruntime, --compile)."""
import re
import runpy
import sys
from pathlib import Path

import pytest
import torch

from mmdyt.deploy.compile import CompiledModel, graph_breaks
from mmdyt.deploy.runtime import InferenceRuntime
from tiny_dyt import images, tiny_arch_text, tiny_dyt

ROOT = Path(__file__).resolve().parents[2]


def test_skipping_path_is_one_graph_when_compiled():
    model = tiny_dyt('attn_mlp')
    ours = graph_breaks(model, images(2))
    assert ours['graphs'] == 1 and ours['breaks'] == 0
    default = graph_breaks(model, images(2), capture=False)
    assert default['breaks'] >= 2 * 2  # nonzero (and .item()) per dispatcher
    assert any('nonzero' in reason or 'Dynamic shape' in reason
               for reason in default['reasons'])


@pytest.mark.parametrize('dispatch', ['mlp', 'attn_mlp'])
def test_compiled_model_follows_each_activation_pattern(dispatch):
    """MLP dispatch gathers rows; attn_mlp also packs the attention (inductor
    lowers its attention on the unbacked K_max)."""
    model = tiny_dyt(dispatch)
    compiled = CompiledModel(model)
    with torch.no_grad():
        for batch_size, seed, bias in ((2, 1, 0.0), (1, 4, 0.0), (3, 2, 1e4), (3, 3, -1e4)):
            for dispatcher in model.dispatchers():
                dispatcher.gate.bias.fill_(bias)
            x = images(batch_size, seed)
            torch.testing.assert_close(compiled(x)[0], model(x)[0], atol=1e-5, rtol=0)


def test_onnxruntime_runtime_times_both_exports(tmp_path):
    from mmdyt.analysis import dense_baseline, forced_activation_rate
    model = tiny_dyt('attn')
    models = dict(model=model, baseline=dense_baseline(model))
    runtime = InferenceRuntime(models, 'onnxruntime', shape=(3, 32, 32), threads=1,
                               directory=str(tmp_path))
    assert 'skipping path' in runtime.lines[0] and 'no dispatchers' in runtime.lines[1]
    x = images(4)
    with forced_activation_rate(model, 0.5, x), torch.no_grad():
        timed = runtime.timed()  # the forced gate biases go into the graph
        torch.testing.assert_close(timed['model'](x)[0], model(x)[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(timed['baseline'](x)[0], models['baseline'](x)[0],
                                   atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match='runtime must be one of'):
        InferenceRuntime(models, 'tensorrt')


def test_benchmark_onnxruntime_cli(tmp_path, capsys):
    config = tmp_path / 'tiny.py'
    config.write_text(f'''
_base_ = ['{ROOT / 'configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py'}']
model = dict(backbone=dict(arch={tiny_arch_text()}, img_size=32, patch_size=8,
                           pretrained=None), head=dict(in_channels=48, num_classes=3))
''')
    old = sys.argv
    sys.argv = ['benchmark.py', str(config), '--batch-size', '1', '2', '--repeats', '1',
                '--force-rate', '0.5', '--threads', '1', '--runtime', 'onnxruntime']
    try:
        runpy.run_path(str(ROOT / 'tools/analysis_tools/benchmark.py'), run_name='__main__')
    finally:
        sys.argv = old
    out = capsys.readouterr().out
    assert 'runtime: ONNX Runtime (CPU, 1 intra-op threads' in out
    assert re.search(r'model: .*skipping path \(tokens selected at run time', out)
    assert [r for r in re.findall(r'batch (\d): ratio [\d.]+', out)] == ['1', '2']
