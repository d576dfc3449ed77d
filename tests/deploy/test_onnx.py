"""ONNX export that keeps the token skipping (mmdyt.deploy.onnx,
tools/deployment/export_onnx.py): round trips in ONNX Runtime on activation
patterns and batch sizes unseen at export, the masked and capacity
fallbacks, and the refusal to trace the skipping path."""
import textwrap
from pathlib import Path

import pytest
import torch

from mmdyt.deploy.onnx import SKIPPING_OPS, ExportCheckError, check_onnx, export_onnx
from tiny_dyt import SHAPE, images, tiny_arch_text, tiny_dyt
from train_runs import run_script

onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ('mlp', 'attn', 'attn_mlp', 'layer')


@pytest.mark.parametrize('num_experts', [1, 4], ids=['adapter', 'moe'])
@pytest.mark.parametrize('dispatch', VARIANTS)
def test_export_keeps_skipping_on_unseen_patterns(tmp_path, dispatch, num_experts):
    model = tiny_dyt(dispatch, num_experts)
    report = export_onnx(model, tmp_path / 'dyt.onnx', images())
    assert report.mode == 'skipping' and report.dynamic_batch
    assert report.op_counts['NonZero'] >= len(model.dispatchers())
    assert 'skipping path' in str(report)
    results = check_onnx(model, report.path, SHAPE, batch_sizes=(1, 5))
    assert [(r.pattern, r.batch_size) for r in results] == [
        ('as trained', 1), ('as trained', 5), ('all on', 5), ('all off', 5), ('half on', 5)]
    rates = {r.pattern: r.rate for r in results}
    assert rates['all on'] == 1.0 and rates['all off'] == 0.0
    assert 0.2 < rates['half on'] < 0.8 and 0.0 < rates['as trained'] < 1.0
    assert all(r.max_abs_diff < 1e-5 for r in results)


def test_tracing_the_skipping_path_is_refused_with_the_way_out():
    model, x = tiny_dyt('attn'), images()
    for trace in (lambda: torch.jit.trace(model, (x, )),
                  lambda: torch.onnx.export(model, (x, ), dynamo=False)):
        with pytest.raises(RuntimeError) as error:
            trace()
        message = str(error.value)
        assert 'freeze the activation pattern' in message
        assert 'skip_inactive=False' in message and 'export_onnx.py' in message
    model.skip_inactive = False
    with torch.no_grad():
        traced = torch.jit.trace(model, (x, ))
        other = 2 * images(3)
        torch.testing.assert_close(traced(other)[0], model(other)[0])


def test_masked_export_is_labelled_not_skipping(tmp_path):
    model = tiny_dyt('attn_mlp')
    report = export_onnx(model, tmp_path / 'masked.onnx', images(), masked=True)
    assert report.mode == 'masked' and 'NOT skipping' in str(report)
    assert not any(report.op_counts.get(op) for op in SKIPPING_OPS)
    assert model.skip_inactive  # restored
    check_onnx(model, report.path, SHAPE, batch_sizes=(1, 4))


def test_capacity_export_has_static_shapes(tmp_path):
    model = tiny_dyt('mlp', capacity=0.75)
    report = export_onnx(model, tmp_path / 'capacity.onnx', images(4), dynamic_batch=False)
    assert report.mode == 'capacity' and not report.dynamic_batch
    assert 'NonZero' not in report.op_counts
    graph = onnx.load(report.path).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [4, *SHAPE]
    with pytest.warns(UserWarning, match='capacity mode'):  # all on overflows
        check_onnx(model, report.path, SHAPE, batch_sizes=(4, ))


def test_check_fails_when_the_graph_differs(tmp_path):
    model = tiny_dyt()
    report = export_onnx(model, tmp_path / 'dyt.onnx', images())
    with torch.no_grad():
        model.blocks[0].mlp.fc2.bias[0] += 1e-2  # a constant shift would be normed away
    with pytest.raises(ExportCheckError, match='does not match PyTorch'):
        check_onnx(model, report.path, SHAPE, batch_sizes=(2, ))


def test_export_errors(tmp_path):
    model = tiny_dyt()
    with pytest.raises(ValueError, match='at least 2 samples'):
        export_onnx(model, tmp_path / 'a.onnx', images(1))
    with pytest.raises(ValueError, match='eval mode'):
        export_onnx(model.train(), tmp_path / 'a.onnx', images())


def write_config(tmp_path):
    path = tmp_path / 'tiny.py'
    path.write_text(textwrap.dedent(f'''
        _base_ = ['{ROOT / 'configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py'}']
        model = dict(
            backbone=dict(arch={tiny_arch_text()}, img_size=32, patch_size=8,
                          pretrained=None, adapter_dim=8),
            head=dict(in_channels=48, num_classes=3))
        '''))
    return path


def run_tool(argv, capsys):
    run_script('deployment/export_onnx', argv)
    return capsys.readouterr().out


def test_tool_exports_a_classifier_checkpoint_and_checks_it(tmp_path, capsys):
    from mmdyt.analysis import build_model, load_config
    config = write_config(tmp_path)
    model = build_model(load_config(str(config)))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'gate.weight' in name:
                param.normal_(std=0.5)
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'model.pth')
    out = run_tool([config, tmp_path / 'model.pth', '--out', tmp_path / 'cls.onnx',
                    '--dynamic-batch'], capsys)
    assert 'skipping path (tokens selected at run time: NonZero x1, ScatterND x1)' in out
    assert 'dynamic batch' in out and 'check passed' in out
    assert 'half on, batch 8' in out
    import onnxruntime as ort
    session = ort.InferenceSession(str(tmp_path / 'cls.onnx'),
                                   providers=['CPUExecutionProvider'])
    x = images(6)
    logits = session.run(None, {'inputs': x.numpy()})[0]
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(logits), model(x, mode='tensor'),
                                   atol=1e-5, rtol=0)


def test_tool_refuses_masked_with_capacity(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_tool([write_config(tmp_path), 'none', '--out', tmp_path / 'a.onnx', '--masked',
                  '--capacity', '0.5'], capsys)
    assert 'choose one' in capsys.readouterr().err


def test_equal_gate_biases_stay_separate_initializers(tmp_path):
    """The exporter merges equal initializers; zero-initialised gates must
    still be found (and set) one by one."""
    model = tiny_dyt('attn_mlp')
    with torch.no_grad():
        for dispatcher in model.dispatchers():
            dispatcher.gate.bias.zero_()
    report = export_onnx(model, tmp_path / 'zero.onnx', images())
    names = {init.name for init in onnx.load(report.path).graph.initializer}
    assert {f'model.blocks.0.dispatchers.{p}.gate.bias' for p in ('attn', 'mlp')} <= names
    assert all(float(d.gate.bias) == 0.0 for d in model.dispatchers())
    check_onnx(model, report.path, SHAPE, batch_sizes=(3, ))


def test_tool_exports_a_segmentor(tmp_path, capsys):
    config = tmp_path / 'seg.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = ['{ROOT / 'configs/seg/dyt/dyt-r0.5_vit-b16_upernet_ade20k-512x512.py'}']
        norm_cfg = dict(type='BN', requires_grad=True)
        model = dict(
            data_preprocessor=dict(size=(64, 64)),
            backbone=dict(arch={tiny_arch_text(4)}, img_size=64, out_indices=(0, 1, 2, 3),
                          adapter_dim=8, pretrained=None),
            neck=dict(embed_dim=48, norm_cfg=norm_cfg),
            decode_head=dict(in_channels=[48] * 4, channels=8, norm_cfg=norm_cfg),
            auxiliary_head=dict(in_channels=48, channels=8, norm_cfg=norm_cfg))
        '''))
    out = run_tool([config, 'none', '--out', tmp_path / 'seg.onnx', '--dynamic-batch'], capsys)
    assert 'skipping path (tokens selected at run time: NonZero x4' in out
    assert 'check passed' in out


def test_tool_exports_a_recognizer(tmp_path, capsys):
    """Video: the graph takes (B, views, C, T, H, W) clips, one view of the
    test pipeline's clip_len frames by default, and returns the class scores
    of every view; the check forces the gates on the frames of the clips."""
    pytest.importorskip('mmaction')
    from mmdyt.analysis import build_model, load_config
    config = tmp_path / 'video.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = ['{ROOT / 'configs/video/dyt/dyt-r0.5_vit-b16_u8_ssv2.py'}']
        model = dict(
            backbone=dict(arch={tiny_arch_text(2)}, img_size=32, patch_size=8, adapter_dim=8,
                          pretrained=None),
            cls_head=dict(in_channels=48, num_heads=3))
        test_pipeline = [dict(type='UniformSample', clip_len=3, num_clips=1, test_mode=True)]
        '''))
    model = build_model(load_config(str(config)))
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'video.pth')
    out = run_tool([config, tmp_path / 'video.pth', '--out', tmp_path / 'video.onnx',
                    '--dynamic-batch'], capsys)
    assert 'skipping path (tokens selected at run time: NonZero x2, ScatterND x2)' in out
    assert 'half on, batch 8' in out and 'check passed' in out
    import onnxruntime as ort
    session = ort.InferenceSession(str(tmp_path / 'video.onnx'),
                                   providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].shape[1:] == [1, 3, 3, 32, 32]
    clips = torch.randn(2, 1, 3, 3, 32, 32)
    scores = session.run(None, {'inputs': clips.numpy()})[0]
    with torch.no_grad():
        expected = model._forward(clips, stage='head')
    assert scores.shape == (2, 174)
    torch.testing.assert_close(torch.from_numpy(scores), expected, atol=1e-5, rtol=0)
