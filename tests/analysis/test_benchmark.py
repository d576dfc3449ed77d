"""Forced activation rates (and undoing them), interleaved timing and
training-step cost."""
import pytest
import torch

from mmdyt.analysis import (dense_baseline, force_activation_rate, forced_activation_rate,
                            linear_kernel_times, summarize, time_interleaved, training_step_cost)
from mmdyt.models.record import ForwardRecord
from tiny_dyt import tiny_vit


def tiny(**kwargs):
    return tiny_vit(3, **kwargs).eval()


@pytest.mark.parametrize('rate', [0.0, 0.25, 0.5, 1.0])
def test_force_activation_rate_per_layer(rate):
    torch.manual_seed(0)
    model = tiny(dispatch='attn_mlp', adapter_dim=8)
    x = torch.randn(4, 3, 32, 32)
    rates = force_activation_rate(model, rate, x)
    assert rates.shape == (6, )
    assert torch.allclose(rates, torch.full_like(rates, rate))
    record = ForwardRecord()
    with torch.no_grad():
        model(x, record=record)
    assert torch.allclose(record.activation_rates(), rates)  # deterministic


def test_force_activation_rate_errors():
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match='rate must be in'):
        force_activation_rate(tiny(adapter_dim=8), 1.5, x)
    with pytest.raises(ValueError, match='no dispatchers'):
        force_activation_rate(tiny(dispatch=None, adapter_dim=None), 0.5, x)


@pytest.mark.parametrize('rate', [0.0, 0.5, 1.0])
def test_forced_activation_rate_is_undone(rate):
    torch.manual_seed(0)
    model = tiny(dispatch='attn_mlp', adapter_dim=8)
    for dispatcher in model.dispatchers():
        torch.nn.init.normal_(dispatcher.gate.weight, std=0.5)
    x = torch.randn(4, 3, 32, 32)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        before = model(x)
    with forced_activation_rate(model, rate, x) as rates:
        assert torch.allclose(rates, torch.full_like(rates, rate))
    with pytest.raises(RuntimeError, match='inside'):
        with forced_activation_rate(model, rate, x):
            raise RuntimeError('inside')
    with torch.no_grad():
        after = model(x)
    assert state.keys() == model.state_dict().keys()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_dense_baseline_is_mmpretrain_vit_of_same_arch():
    from mmpretrain.models import VisionTransformer
    baseline = dense_baseline(tiny(adapter_dim=8))
    assert isinstance(baseline, VisionTransformer)
    assert not baseline.training
    assert baseline.embed_dims == 48 and baseline.num_layers == 3
    assert baseline(torch.randn(2, 3, 32, 32))[0].shape == (2, 48)


def test_time_interleaved_and_summary():
    calls = []
    models = {name: tiny(dispatch=None, adapter_dim=None) for name in 'ab'}
    for name, model in models.items():
        model.register_forward_hook(lambda m, i, o, name=name: calls.append(name))
    times = time_interleaved(models, torch.randn(1, 3, 32, 32), repeats=3, warmup=1)
    assert [len(t) for t in times.values()] == [3, 3]
    assert calls == ['a', 'b', 'a', 'b', 'b', 'a', 'a', 'b']  # warm-up, then rotating
    stats = summarize([1.0, 2.0, 4.0])
    assert stats == dict(median=2.0, min=1.0, max=4.0, spread=1.5)


def test_training_step_cost_trains_only_tuning_parameters():
    torch.manual_seed(0)
    model = tiny(dispatch='mlp', adapter_dim=8)
    frozen = model.blocks[0].mlp.fc1.weight.clone()
    gate = model.blocks[0].dispatchers['mlp'].gate.weight.clone()
    result = training_step_cost(model, torch.randn(2, 3, 32, 32), steps=2)
    assert len(result['times']) == 2 and result['peak_bytes'] >= 0
    assert torch.equal(model.blocks[0].mlp.fc1.weight, frozen)
    assert not torch.equal(model.blocks[0].dispatchers['mlp'].gate.weight, gate)


def test_peak_rss_reset_forgets_earlier_peaks():
    from mmdyt.analysis.memory import peak_rss_bytes, reset_peak_rss
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, resident
    del block
    peak_with_block = peak_rss_bytes()
    if not reset_peak_rss():
        pytest.skip('/proc/self/clear_refs is not writable here')
    assert peak_rss_bytes() < peak_with_block - 32 * 2**20


def test_linear_kernel_times_rows():
    rows = linear_kernel_times(48, 96, [5, 9], repeats=2, warmup=1)
    assert [(r['layer'], r['tokens']) for r in rows] == [
        (layer, tokens) for layer in ('qkv', 'proj', 'fc1+gelu', 'fc2') for tokens in (5, 9)]
    for row in rows:
        assert row['aten'] > 0 and row['onednn'] > 0
        assert row['ratio'] == row['aten'] / row['onednn']
        assert row['fused'] == 'aten'  # far below MIN_MULTIPLY_ADDS
    big = linear_kernel_times(256, 512, [256], repeats=1, warmup=0)
    # tokens x C_in x C_out against 2**25: qkv 2**26, proj 2**24, fc1 and fc2 2**25
    assert [r['fused'] for r in big] == ['oneDNN', 'aten', 'oneDNN', 'oneDNN']


def test_linear_kernel_times_needs_onednn(monkeypatch):
    import mmdyt.deploy.cpu as module
    monkeypatch.setattr(module, 'onednn_available', lambda: False)
    with pytest.raises(RuntimeError, match='cannot time oneDNN here: .* no oneDNN'):
        linear_kernel_times(48, 96, [5])
