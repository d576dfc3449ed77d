"""GradientMaskHook: zeroes about p_m of the gradient entries each step."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from mmdyt.engine.hooks import GradientMaskHook


def model_and_runner():
    model = nn.Sequential(nn.Linear(200, 500), nn.Linear(500, 2))
    model[1].weight.requires_grad_(False)
    return model, SimpleNamespace(model=model)


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
