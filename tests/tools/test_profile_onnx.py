"""tools/analysis_tools/profile_onnx.py: the aggregation of an ONNX Runtime
profile and a command line run on a tiny layer-dispatch classifier."""
import re
import sys
import textwrap
from pathlib import Path

import pytest

from tiny_dyt import tiny_arch, tiny_arch_text
from train_runs import run_script

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / 'tools' / 'analysis_tools'


@pytest.fixture
def tool(monkeypatch):
    """The tool's module (it imports ``benchmark`` from its folder)."""
    monkeypatch.syspath_prepend(str(TOOLS))
    import profile_onnx
    return profile_onnx


def node(name, op, ts, dur):
    return dict(cat='Node', name=f'{name}_kernel_time', ts=ts, dur=dur, args=dict(op_name=op))


def run(ts, dur):
    return dict(cat='Session', name='model_run', ts=ts, dur=dur)


def events():
    """A warm-up (slow, 1000 us per node) then two runs of three nodes; the
    fences and the session's own events are not kernel time."""
    out = [dict(cat='Session', name='session_initialization', ts=0, dur=50)]
    for start, scale in ((100, 10), (200, 1), (300, 3)):
        out += [run(start, 90), node('mm', 'MatMul', start + 1, 100 * scale),
                dict(cat='Node', name='mm_fence_before', ts=start + 1, dur=7,
                     args=dict(op_name='MatMul')),
                node('nz', 'NonZero', start + 2, 10 * scale),
                node('conv', 'Conv', start + 3, 20 * scale)]
    return out


def test_aggregate_drops_the_warmup_and_averages_per_run(tool):
    profile = tool.aggregate_profile(events())
    assert profile['runs'] == 2
    assert profile['ops'] == pytest.approx(dict(MatMul=0.2, NonZero=0.02, Conv=0.04))
    assert profile['counts'] == dict(MatMul=1, NonZero=1, Conv=1)
    assert profile['nodes']['nz'] == ('NonZero', pytest.approx(0.02))
    grouped = tool.group_times(profile['ops'])
    assert grouped['dispatch: NonZero / Gather / GatherND / ScatterND'] == pytest.approx(0.02)
    assert grouped['other'] == pytest.approx(0.04)  # Conv
    assert grouped['padding zeros (ConstantOfShape)'] is None
    assert sum(ms for ms in grouped.values() if ms) == pytest.approx(0.26)
    table = tool.profile_table(dict(dyt=profile))
    assert table[-1] == '| kernels total | 0.26 ms |'
    assert '| MatMul / Gemm (linear layers) | 0.20 ms (76.9 %) |' in table
    with pytest.raises(ValueError, match='1 model runs'):
        tool.aggregate_profile(events()[:6])


def write_config(tmp_path, base):
    config = tmp_path / 'tiny.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = ['{ROOT / base}']
        model = dict(
            backbone=dict(arch={tiny_arch_text(2)}, img_size=32, patch_size=8,
                          pretrained=None),
            head=dict(in_channels=48, num_classes=3))
        '''))
    return config


def run_tool(argv, capsys):
    run_script('analysis_tools/profile_onnx', argv)
    return capsys.readouterr().out


def test_profile_layer_dispatch_against_dense(tmp_path, capsys, tool):
    pytest.importorskip('onnxruntime')
    config = write_config(tmp_path, 'configs/cls/dyt/dyt-layer-r0.5_vit-b16_cifar100.py')
    out = run_tool([config, '--batch-size', 4, '--force-rate', 0.5, '--runs', 2,
                    '--threads', 1, '--top', 3, '--work-dir', tmp_path / 'work'], capsys)
    assert 'forced activation rates 0.500' in out
    assert "| op types (after ORT's fusions), ms per run | model | baseline |" in out
    rows = re.findall(r'^\| ([^|]+) \|[^|]+\|[^|]+\|$', out, re.M)
    assert rows[2:] == [*tool.OP_GROUPS, 'other', 'kernels total']
    ops = dict(re.findall(r'^(model|baseline) op types: (.*)$', out, re.M))
    for op in ('NonZero', 'ScatterND'):
        assert f'{op} x' in ops['model'] and f'{op} x' not in ops['baseline']
    assert len(re.findall(r'^\| baseline \| \S+ \| \w+ \| [\d.]+ \|$', out, re.M)) == 3
    assert len(list((tmp_path / 'work').glob('model_*.json'))) == 1


def test_profile_needs_a_dyt_backbone(tmp_path, tool):
    config = tmp_path / 'dense.py'
    config.write_text(textwrap.dedent(f'''
        default_scope = 'mmpretrain'
        model = dict(
            type='ImageClassifier',
            backbone=dict(type='VisionTransformer', img_size=32, patch_size=8,
                          arch={tiny_arch()!r}),
            head=dict(type='LinearClsHead', num_classes=3, in_channels=48))
        '''))
    with pytest.raises(ValueError, match='no DyTVisionTransformer backbone with dispatchers'):
        tool.main([str(config)])


def test_profile_needs_onnxruntime(tmp_path, tool, monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # import raises ImportError
    with pytest.raises(ImportError, match='pip install onnxruntime'):
        tool.main([str(tmp_path / 'any.py')])
