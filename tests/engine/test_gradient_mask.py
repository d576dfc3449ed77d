"""GradientMaskHook: zeroes about p_m of the gradient entries each step, and
the optimizer step leaves those entries bit-identical."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from mmdyt.engine.hooks import GradientMaskHook


def model_and_runner(optimizer=None):
    model = nn.Sequential(nn.Linear(200, 500), nn.Linear(500, 2))
    model[1].weight.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = optimizer or (lambda params: torch.optim.SGD(params, lr=0.1))
    wrapper = SimpleNamespace(optimizer=optimizer(trainable))
    return model, SimpleNamespace(model=model, optim_wrapper=wrapper)


def backward(model):
    model.zero_grad()
    (model(torch.ones(1, 200)).sum() + model[0].weight.sum()).backward()


@pytest.mark.parametrize('p', [0.1, 0.3])
def test_mask_zeroes_about_p_of_the_entries(p):
    torch.manual_seed(0)
    model, runner = model_and_runner()
    hook = GradientMaskHook(mask_prob=p)
    hook.before_train(runner)
    backward(model)
    first = model[0].weight.grad.clone()
    zero = (first == 0).double().mean().item()
    assert abs(zero - p) < 0.01  # 100k entries: 3 sigma is ~0.003
    assert model[1].weight.grad is None  # frozen parameters are untouched
    backward(model)
    assert torch.equal(first == 0, model[0].weight.grad == 0)  # one mask per step
    runner.optim_wrapper.optimizer.step()
    backward(model)
    assert not torch.equal(first == 0, model[0].weight.grad == 0)  # a new mask each step
    hook.after_train(runner)
    backward(model)
    assert (model[0].weight.grad == 0).sum() == 0


def test_keys_and_bad_arguments():
    model, runner = model_and_runner()
    hook = GradientMaskHook(mask_prob=0.5, keys=('0.bias',))
    hook.before_train(runner)
    backward(model)
    assert (model[0].weight.grad == 0).sum() == 0 and (model[0].bias.grad == 0).any()
    with pytest.raises(ValueError, match=r'mask_prob must be in \[0, 1\)'):
        GradientMaskHook(mask_prob=1.0)
    with pytest.raises(ValueError, match='no trainable parameter matches'):
        GradientMaskHook(keys=('nothing',)).before_train(runner)


@pytest.mark.parametrize('optimizer', [
    lambda params: torch.optim.AdamW(params, lr=0.1, weight_decay=0.05),
    lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.05),
], ids=['adamw', 'sgd'])
def test_masked_entries_are_not_updated_by_the_step(optimizer):
    """Eq. 8: masked entries are bit-identical after each step (neither weight
    decay nor the momentum of earlier steps moves them), the others move."""
    torch.manual_seed(0)
    model, runner = model_and_runner(optimizer)
    opt = runner.optim_wrapper.optimizer
    hook = GradientMaskHook(mask_prob=0.3)
    hook.before_train(runner)
    for _ in range(3):
        before = {p: p.detach().clone() for p in model.parameters() if p.requires_grad}
        backward(model)
        frozen = {p: p.grad == 0 for p in before}
        opt.step()
        for param, value in before.items():
            assert torch.equal(param[frozen[param]], value[frozen[param]])
            assert (param[~frozen[param]] != value[~frozen[param]]).all()
            assert param.numel() < 500 or 0.25 < frozen[param].double().mean() < 0.35
    hook.after_train(runner)
    before = model[0].weight.detach().clone()
    backward(model)
    opt.step()
    assert (model[0].weight != before).all()  # hooks removed: everything moves
