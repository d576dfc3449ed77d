"""TemperatureScheduleHook and ActivationLoggerHook."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.registry import HOOKS

from mmdyt.engine.hooks import ActivationLoggerHook, TemperatureScheduleHook, scheduled_tau
from tiny_dyt import tiny_classifier, tiny_vit


def tiny_model(**kwargs):
    """A backbone inside a wrapper, as the hooks find it in a classifier."""
    kwargs.setdefault('adapter_dim', 8)
    model = torch.nn.Module()
    model.backbone = tiny_vit(3, **kwargs)
    return model


def fake_runner(model, it=0, max_iters=100, epoch=0, max_epochs=10):
    hub = MessageHub(f'hub_{id(model)}_{it}_{epoch}')
    return SimpleNamespace(model=model, iter=it, max_iters=max_iters, epoch=epoch,
                           max_epochs=max_epochs, message_hub=hub)


@pytest.mark.parametrize('policy,progress,expected', [
    ('constant', 0.0, 5.0), ('constant', 0.7, 5.0),
    ('linear', 0.0, 5.0), ('linear', 0.5, 2.55), ('linear', 1.0, 0.1),
    ('cosine', 0.0, 5.0), ('cosine', 0.5, 2.55), ('cosine', 1.0, 0.1),
    ('cosine', 0.25, 0.1 + 4.9 * (1 + math.cos(math.pi / 4)) / 2),
    ('linear', 1.5, 0.1),  # clamped after the end
])
def test_scheduled_tau_values(policy, progress, expected):
    assert scheduled_tau(policy, 5.0, 0.1, progress) == pytest.approx(expected)


@pytest.mark.parametrize('it,expected', [(0, 5.0), (25, 3.775), (50, 2.55), (100, 0.1)])
def test_hook_sets_every_dispatcher_by_iteration(it, expected):
    model = tiny_model(dispatch='attn_mlp')
    hook = HOOKS.build(dict(type='TemperatureScheduleHook', tau_start=5.0, tau_end=0.1,
                            policy='linear'))
    runner = fake_runner(model, it=it, max_iters=100)
    hook.before_train(runner)
    hook.before_train_iter(runner, batch_idx=it)
    taus = [d.tau for d in model.backbone.dispatchers()]
    assert len(taus) == 6 and taus == pytest.approx([expected] * 6)
    assert runner.message_hub.get_scalar('train/tau').current() == pytest.approx(expected)


def test_hook_by_epoch_ignores_the_iteration():
    model = tiny_model()
    hook = TemperatureScheduleHook(tau_start=5.0, tau_end=0.1, policy='cosine', by_epoch=True)
    runner = fake_runner(model, it=999, max_iters=1000, epoch=5, max_epochs=10)
    hook.before_train(runner)
    hook.before_train_iter(runner, batch_idx=0)
    assert model.backbone.dispatchers()[0].tau == pytest.approx(2.55)


def test_hook_errors():
    with pytest.raises(ValueError, match='policy must be one of'):
        TemperatureScheduleHook(policy='step')
    with pytest.raises(ValueError, match='must be > 0'):
        TemperatureScheduleHook(tau_end=0.0)
    with pytest.raises(ValueError, match='with token dispatchers'):
        TemperatureScheduleHook().before_train(fake_runner(tiny_model(dispatch=None)))


def logged_iteration(model, runner):
    """One training iteration's outputs through mmengine's own path: the
    model's losses -> parse_losses -> RuntimeInfoHook -> message hub."""
    from mmengine.hooks import RuntimeInfoHook
    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    inputs = torch.randn(2, 3, 32, 32)
    torch.manual_seed(1)
    samples = [DataSample().set_gt_label(i) for i in range(2)]
    _, log_vars = model.parse_losses(model.loss(inputs, samples))
    RuntimeInfoHook().after_train_iter(runner, 0, outputs=log_vars)
    return inputs


def test_activation_logger_puts_rates_and_gflops_in_the_message_hub():
    model = tiny_classifier(dict(dispatch='mlp')).train()
    runner = fake_runner(model)
    HOOKS.build(dict(type='ActivationLoggerHook')).before_train(runner)
    assert model.log_efficiency
    inputs = logged_iteration(model, runner)
    torch.manual_seed(1)
    _, record = model.features(inputs)  # the same forward again, same noise
    rates = record.activation_rates()
    scalars = runner.message_hub.log_scalars
    for i in range(3):
        assert scalars[f'train/rate_layer{i}'].current() == pytest.approx(rates[i].item())
    assert scalars['train/activation_rate'].current() == pytest.approx(rates.mean().item())
    assert scalars['train/gflops'].current() == pytest.approx(
        model.backbone.flops(record).mean().item() / 1e9)


def test_activation_logger_without_dispatch_logs_gflops_only():
    model = tiny_classifier(dict(dispatch=None, adapter_dim=None)).train()
    runner = fake_runner(model)
    ActivationLoggerHook().before_train(runner)
    logged_iteration(model, runner)
    assert {k for k in runner.message_hub.log_scalars if 'loss' not in k} == {'train/gflops'}


def test_activation_logger_refuses_a_model_without_dyt_glue():
    with pytest.raises(ValueError, match='ActivationLoggerHook needs an mmdyt model'):
        ActivationLoggerHook().before_train(fake_runner(tiny_model()))
