"""fuse_for_cpu: oneDNN linear layers (GELU fused) as an explicit deploy
step, same results as aten, checked on this CPU before it is used."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import mmdyt.deploy.cpu as cpu
from mmdyt.deploy import OneDNNLinear, fuse_for_cpu, probe_onednn
from mmdyt.models.petl import LoRALinear, RepAdapterLinear, SequentialAdapterLinear
import tiny_dyt

ROOT = Path(__file__).resolve().parents[2]
PRIMITIVE_ERROR = ('could not create a primitive descriptor for the inner product forward '
                   'propagation primitive')

needs_onednn = pytest.mark.skipif(probe_onednn(torch.float32) is not None,
                                  reason=f'oneDNN unusable: {probe_onednn(torch.float32)}')


class Mlp(nn.Module):
    """fc1 -> act -> fc2, (..., C) -> (..., C)."""

    def __init__(self, dims=16, hidden=32, fc2_in=None):
        super().__init__()
        self.fc1 = nn.Linear(dims, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(fc2_in or hidden, dims)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def tiny_vit():
    """A 2-block ViT (C=64, 2 heads, MLP 128) with adapters of width 8, in
    eval mode."""
    torch.manual_seed(0)
    arch = tiny_dyt.tiny_arch(2, embed_dims=64, num_heads=2, feedforward_channels=128)
    return tiny_dyt.tiny_vit(arch=arch, adapter_dim=8).eval()


def images():
    return tiny_dyt.images(seed=1)


@pytest.fixture
def onednn_calls(monkeypatch):
    """The inputs (shapes) oneDNN's inner product is called on."""
    calls = []
    real = cpu._linear_pointwise

    def counted(x, *args):
        calls.append(tuple(x.shape))
        return real(x, *args)

    monkeypatch.setattr(cpu, '_linear_pointwise', counted)
    return calls


@pytest.fixture
def logged(monkeypatch):
    """(message, level) of every print_log of mmdyt.deploy.cpu."""
    lines = []
    monkeypatch.setattr(cpu, 'print_log',
                        lambda msg, logger=None, level=None: lines.append((msg, level)))
    return lines


def structure(model):
    return [(name, type(m)) for name, m in model.named_modules()]


@needs_onednn
def test_fused_vit_matches_unfused(onednn_calls):
    model = tiny_vit()
    inputs = images()
    keys = list(model.state_dict())
    with torch.no_grad():
        expected = model(inputs)
    linears = sum(type(m) is nn.Linear for m in model.modules())
    report = fuse_for_cpu(model, min_multiply_adds=0)
    assert report.reason is None and report.dtypes == (torch.float32, )
    assert report.linears == linears and report.gelus == 2
    for block in model.blocks:
        assert type(block.mlp.fc1) is OneDNNLinear and block.mlp.fc1.gelu
        assert type(block.mlp.act) is nn.Identity
    onednn_calls.clear()
    with torch.no_grad():
        out = model(inputs)
    assert onednn_calls
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert list(model.state_dict()) == keys
    model.load_state_dict(tiny_vit().state_dict())


@needs_onednn
def test_parameters_are_shared_and_threshold_applies(onednn_calls):
    layer = nn.Linear(256, 512)
    fused = OneDNNLinear(layer)
    assert fused.weight is layer.weight and fused.bias is layer.bias
    with torch.no_grad():
        fused(torch.randn(255, 256))
        assert onednn_calls == []
        fused(torch.randn(256, 256))  # 2**25 multiply-adds
    assert onednn_calls == [(256, 256)]


@needs_onednn
def test_petl_layers_are_left_alone():
    model = nn.Sequential(LoRALinear(nn.Linear(16, 32), rank=4),
                          RepAdapterLinear(nn.Linear(16, 32), dim=4, groups=2),
                          SequentialAdapterLinear(nn.Linear(16, 32), dim=4), nn.Linear(16, 32))
    before = structure(model)
    report = fuse_for_cpu(model)
    assert report.linears == 1 and type(model[3]) is OneDNNLinear
    assert structure(model)[:-1] == before[:-1]


@needs_onednn
def test_gelu_is_fused_only_where_it_follows_the_whole_linear():
    model = nn.Sequential(
        Mlp(),
        Mlp(fc2_in=16),  # a GLU's fc2 takes half of fc1's output
        nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16)),
        nn.Sequential(nn.Linear(16, 32), nn.GELU(approximate='tanh')))
    report = fuse_for_cpu(model)
    assert report.gelus == 2
    assert model[0].fc1.gelu and type(model[0].act) is nn.Identity
    assert not model[1].fc1.gelu and type(model[1].act) is nn.GELU
    assert model[2][0].gelu and type(model[2][1]) is nn.Identity
    assert not model[3][0].gelu and type(model[3][1]) is nn.GELU


@needs_onednn
def test_dense_baseline_is_fused_alike():
    """mmpretrain's ViT: mmcv's Linear in the FFN, fc1 and GELU in an
    nn.Sequential."""
    from mmdyt.analysis import dense_baseline
    baseline = dense_baseline(tiny_vit())
    inputs = images()
    with torch.no_grad():
        expected = baseline(inputs)
        report = fuse_for_cpu(baseline, min_multiply_adds=0)
        out = baseline(inputs)
    assert report.reason is None and (report.linears, report.gelus) == (8, 2)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_autograd_falls_back_to_f_linear(onednn_calls):
    model = Mlp()
    fuse_for_cpu(model, min_multiply_adds=0)
    onednn_calls.clear()
    x = torch.randn(8, 16)
    model(x).sum().backward()
    assert onednn_calls == [] and model.fc1.weight.grad is not None


@needs_onednn
def test_other_dtypes_than_the_probed_fall_back(onednn_calls):
    layer = OneDNNLinear(nn.Linear(16, 32).to(torch.bfloat16), dtypes=(torch.float32, ),
                         min_multiply_adds=0)
    with torch.no_grad():
        out = layer(torch.randn(4, 16, dtype=torch.bfloat16))
    assert onednn_calls == [] and out.dtype == torch.bfloat16


@needs_onednn
def test_tracing_and_scripting_record_the_portable_ops(onednn_calls):
    model = Mlp().eval()
    fuse_for_cpu(model, min_multiply_adds=0)
    x = torch.randn(8, 16)
    with torch.no_grad():
        traced = torch.jit.trace(model, x)
        expected = model(x)
    graph = str(traced.inlined_graph)
    assert 'linear_pointwise' not in graph and 'aten::linear' in graph
    torch.testing.assert_close(traced(x), expected)
    scripted = torch.jit.script(model)
    assert 'linear_pointwise' not in str(scripted.inlined_graph)
    torch.testing.assert_close(scripted(x), expected)


def test_probe_failure_leaves_the_model_unchanged(monkeypatch, logged):
    def broken(*args):
        raise RuntimeError(PRIMITIVE_ERROR)

    monkeypatch.setattr(cpu, '_linear_pointwise', broken)
    model = tiny_vit()
    before = structure(model)
    report = fuse_for_cpu(model)
    assert report.linears == 0 and PRIMITIVE_ERROR in report.reason
    assert 'torch.float32' in report.reason
    assert structure(model) == before
    assert len(logged) == 1 and logged[0][1] == cpu.logging.WARNING
    assert PRIMITIVE_ERROR in logged[0][0] and 'aten kernels kept' in logged[0][0]


def test_one_failing_dtype_keeps_aten_for_all(monkeypatch, logged):
    real = cpu._linear_pointwise

    def no_bfloat16(x, *args):
        if x.dtype == torch.bfloat16:
            raise RuntimeError(PRIMITIVE_ERROR)
        return real(x, *args)

    monkeypatch.setattr(cpu, '_linear_pointwise', no_bfloat16)
    model = Mlp()
    report = fuse_for_cpu(model, dtype=[torch.float32, torch.bfloat16])
    assert report.reason == f'torch.bfloat16: {PRIMITIVE_ERROR}'
    assert type(model.fc1) is nn.Linear


def test_bfloat16_fuses_or_falls_back_with_the_reason(logged):
    model = tiny_vit()
    inputs = images()
    with torch.no_grad():
        expected = model(inputs)
    model.to(torch.bfloat16)
    before = structure(model)
    report = fuse_for_cpu(model, min_multiply_adds=0)
    if report.reason is None:
        assert report.dtypes == (torch.bfloat16, ) and report.linears > 0
        with torch.no_grad():
            out = model(inputs.to(torch.bfloat16))
        torch.testing.assert_close(out[0].float(), expected[0], rtol=0.1, atol=0.1)
    else:
        assert 'torch.bfloat16' in report.reason and structure(model) == before
        assert logged[-1][1] == cpu.logging.WARNING


@pytest.mark.parametrize('model, reason', [
    (nn.Sequential(nn.Linear(4, 4).half()), 'float32 or bfloat16, not torch.float16'),
    (nn.Sequential(nn.Linear(4, 4, device='meta')), 'on meta, not the CPU'),
    (nn.Sequential(LoRALinear(nn.Linear(4, 4), rank=2)), 'no plain linear layer'),
])
def test_nothing_to_fuse_is_reported(model, reason, logged):
    report = fuse_for_cpu(model)
    assert reason in report.reason and reason in logged[0][0]


def test_layers_with_hooks_keep_them():
    model = Mlp()
    seen = []
    model.fc2.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    fuse_for_cpu(model)
    assert type(model.fc2) is nn.Linear
    with torch.no_grad():
        model(torch.randn(3, 16))
    assert seen == [torch.Size([3, 16])]


TOY_MODULE = '''
import torch
import torch.nn as nn
from mmengine.dataset import BaseDataset
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, METRICS, MODELS


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(8, 1)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


@MODELS.register_module()
class FuseToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.mlp = Mlp()

    def forward(self, inputs, labels=None, mode='tensor', **kwargs):
        out = self.mlp(inputs).squeeze(-1)
        if mode == 'predict':
            return [dict(pred=p, label=l) for p, l in zip(out, labels)]
        return out


@DATASETS.register_module()
class FuseToyDataset(BaseDataset):
    def __init__(self, **kwargs):
        super().__init__(serialize_data=False, **kwargs)

    def load_data_list(self):
        g = torch.Generator().manual_seed(0)
        return [dict(inputs=torch.randn(4, generator=g), labels=float(i % 2))
                for i in range(8)]


@METRICS.register_module()
class FuseToyMetric(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results += [float((s['pred'] - s['label']) ** 2) for s in data_samples]

    def compute_metrics(self, results):
        return dict(mse=sum(results) / len(results))
'''

TOY_CONFIG = '''
default_scope = 'mmengine'
custom_imports = dict(imports=['fuse_toy'], allow_failed_imports=False)
model = dict(type='FuseToyModel')
test_dataloader = dict(dataset=dict(type='FuseToyDataset'), batch_size=4, num_workers=0,
                       sampler=dict(type='DefaultSampler', shuffle=False),
                       collate_fn=dict(type='default_collate'))
test_evaluator = dict(type='FuseToyMetric')
test_cfg = dict()
'''


@needs_onednn
def test_tools_test_fuse_cpu_loads_the_checkpoint_into_fused_layers(tmp_path):
    (tmp_path / 'fuse_toy.py').write_text(TOY_MODULE)
    (tmp_path / 'toy.py').write_text(textwrap.dedent(TOY_CONFIG))
    # fc2 = 0.5 constant: mse 0.25 against labels 0, 1, 0, 1, ... iff it loaded
    state = {'mlp.fc1.weight': torch.randn(8, 4), 'mlp.fc1.bias': torch.zeros(8),
             'mlp.fc2.weight': torch.zeros(1, 8), 'mlp.fc2.bias': torch.full((1, ), 0.5)}
    torch.save(dict(state_dict=state), tmp_path / 'toy.pth')
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run([sys.executable, str(ROOT / 'tools' / 'test.py'), 'toy.py', 'toy.pth',
                           '--work-dir', str(tmp_path / 'work'), '--fuse-cpu'],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'oneDNN via fuse_for_cpu: 2 linear layers (1 with GELU fused)' in out
    assert 'mse: 0.2500' in out


def test_probe_compares_with_f_linear(monkeypatch):
    monkeypatch.setattr(cpu, '_linear_pointwise',
                        lambda x, weight, bias, gelu: F.linear(x, weight) + 1)
    assert 'differs from F.linear by' in probe_onednn(torch.float32)
