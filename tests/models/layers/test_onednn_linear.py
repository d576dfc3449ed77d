"""oneDNN linear kernels of CPU inference: same results as F.linear, used
only where they may be, and switchable."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.profiler import profile

from mmdyt.models.layers import (LoRALinear, linear, onednn_linear_enabled,
                                 set_onednn_linear)

needs_onednn = pytest.mark.skipif(not onednn_linear_enabled(),
                                  reason='PyTorch built without oneDNN')


def onednn_calls(fn):
    with profile() as prof:
        fn()
    return sum(e.count for e in prof.key_averages() if 'linear_pointwise' in e.key)


@pytest.fixture
def layer():
    """256 -> 512 on 256 tokens: 2**25 multiply-adds, the smallest size that
    goes to oneDNN."""
    torch.manual_seed(0)
    return nn.Linear(256, 512)


@needs_onednn
@pytest.mark.parametrize('gelu', [False, True])
@pytest.mark.parametrize('shape', [(256, 256), (2, 128, 256)])
def test_matches_f_linear_in_inference(layer, gelu, shape):
    x = torch.randn(*shape)
    expected = F.linear(x, layer.weight, layer.bias)
    expected = F.gelu(expected) if gelu else expected
    with torch.no_grad():
        out = linear(layer, x, gelu=gelu)
        assert onednn_calls(lambda: linear(layer, x, gelu=gelu)) == 1
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_bfloat16_and_no_bias():
    layer = nn.Linear(256, 512, bias=False).to(torch.bfloat16)
    x = torch.randn(256, 256, dtype=torch.bfloat16)
    with torch.inference_mode():
        out = linear(layer, x, gelu=True)
        assert onednn_calls(lambda: linear(layer, x)) == 1
    expected = F.gelu(F.linear(x.float(), layer.weight.float()))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, rtol=2e-2, atol=2e-2)


def test_training_keeps_autograd(layer):
    x = torch.randn(256, 256)
    out = linear(layer, x, gelu=True)
    assert onednn_calls(lambda: linear(layer, x)) == 0
    out.sum().backward()
    assert layer.weight.grad is not None


def test_hooks_and_other_modules_see_their_calls(layer):
    seen = []
    layer.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    lora = LoRALinear(nn.Linear(256, 512), rank=4)
    with torch.no_grad():
        linear(layer, torch.randn(256, 256))
        assert onednn_calls(lambda: linear(lora, torch.randn(256, 256))) == 0
    assert seen == [torch.Size([256, 256])]


@needs_onednn
def test_small_layers_stay_on_aten(layer):
    with torch.no_grad():
        assert onednn_calls(lambda: linear(layer, torch.randn(255, 256))) == 0
        assert onednn_calls(lambda: linear(layer, torch.randn(256, 256))) == 1


def test_switch_falls_back_to_the_module(layer):
    x = torch.randn(256, 256)
    previous = set_onednn_linear(False)
    try:
        assert not onednn_linear_enabled()
        with torch.no_grad():
            assert torch.equal(linear(layer, x, gelu=True), F.gelu(layer(x)))
            assert onednn_calls(lambda: linear(layer, x)) == 0
    finally:
        set_onednn_linear(previous)
    assert onednn_linear_enabled() == previous


@needs_onednn
def test_tracing_records_the_portable_op(layer):
    """ONNX export and mmdeploy trace the model: no oneDNN op in the graph."""
    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = layer

        def forward(self, x):
            return linear(self.fc, x, gelu=True)

    x = torch.randn(256, 256)
    with torch.no_grad():
        assert onednn_calls(lambda: Mlp()(x)) == 1
        traced = torch.jit.trace(Mlp(), x)
    graph = str(traced.inlined_graph)
    assert 'linear_pointwise' not in graph and 'aten::linear' in graph
    torch.testing.assert_close(traced(x), F.gelu(layer(x)))
