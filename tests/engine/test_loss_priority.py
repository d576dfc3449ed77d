"""LossPriorityHook: lambda schedules and what it writes into the model."""
from types import SimpleNamespace

import pytest
import torch.nn as nn
from mmengine.logging import MessageHub

from mmdyt.engine.hooks import LossPriorityHook


class FakeExitModel(nn.Module):
    num_exits = 4
    num_shallow_stages = 2

    def set_loss_weights(self, weights):
        self.loss_weights = weights


def run(hook, model, iteration, max_iters=10):
    hub = MessageHub.get_instance('test_loss_priority')
    runner = SimpleNamespace(model=model, iter=iteration, max_iters=max_iters,
                             epoch=0, max_epochs=1, message_hub=hub)
    hook.before_train(runner)
    hook.before_train_iter(runner, iteration)
    return hub


@pytest.mark.parametrize('policy', ['linear', 'cosine'])
def test_shallow_rises_deep_falls_and_they_meet(policy):
    hook = LossPriorityHook(shallow_start=0.1, deep_start=1.0, meet=0.5, policy=policy)
    model = FakeExitModel()
    shallow, deep = [], []
    for it in range(11):
        hub = run(hook, model, it)
        s, d = model.loss_weights[0], model.loss_weights[-1]
        assert model.loss_weights == [s, s, d, d]
        assert hub.get_scalar('train/lambda_shallow').current() == s
        assert hub.get_scalar('train/lambda_deep').current() == d
        shallow.append(s)
        deep.append(d)
    assert shallow[0] == pytest.approx(0.1) and deep[0] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(shallow, shallow[1:]))
    assert all(a > b for a, b in zip(deep, deep[1:]))
    assert max(shallow) == pytest.approx(0.5) == pytest.approx(min(deep))


def test_bad_schedule_and_model():
    with pytest.raises(ValueError, match='shallow_start <= meet <= deep_start'):
        LossPriorityHook(shallow_start=0.6, meet=0.5)
    with pytest.raises(ValueError, match='policy must be one of'):
        LossPriorityHook(policy='step')
    with pytest.raises(ValueError, match='needs an early-exit model'):
        run(LossPriorityHook(), nn.Linear(2, 2), 0)
