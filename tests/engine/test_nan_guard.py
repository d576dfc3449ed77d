"""NaNGuardHook: a NaN loss stops training, naming the iteration and the
last activation rates; the poisoned weights are not checkpointed."""
import re

import pytest
import torch

from mmdyt.engine.hooks import NaNGuardHook
import train_runs


def test_nan_loss_stops_training_through_tools_train(tmp_path):
    task = train_runs.write_task(tmp_path / 'data')
    config = train_runs.write_config(tmp_path / 'nan_guard.py', task, '''
custom_hooks.append(dict(type='PoisonWeightsHook', at=2))
default_hooks = dict(checkpoint=dict(interval=1))
''')
    with pytest.raises(FloatingPointError) as error:
        train_runs.train_in_process(config, tmp_path / 'work', '--no-validate')
    message = str(error.value)
    assert 'NaN/inf loss at iteration 2 (epoch 1): loss=nan' in message
    rates = re.search(r'last activation rates per layer: \[(.*?)\]', message).group(1)
    rates = [float(r) for r in rates.split(',')]
    assert len(rates) == 2 and all(0.0 <= r <= 1.0 for r in rates)  # two blocks, mlp dispatch
    assert (tmp_path / 'work' / 'iter_1.pth').exists()
    assert not (tmp_path / 'work' / 'iter_2.pth').exists()
    assert list(train_runs.read_losses(tmp_path / 'work')) == [1]


@pytest.mark.parametrize('value', [float('inf'), float('-inf'), float('nan')])
def test_any_loss_term(value):
    runner = type('Runner', (), dict(iter=6, epoch=0, model=torch.nn.Linear(1, 1)))()
    outputs = dict(loss=torch.tensor(1.0), loss_rate=torch.tensor(value), acc=float('nan'))
    with pytest.raises(FloatingPointError, match=r'iteration 7 .*loss_rate=.*no activation rates'):
        NaNGuardHook().after_train_iter(runner, 6, outputs=outputs)
    NaNGuardHook().after_train_iter(runner, 6, outputs=dict(loss=torch.tensor(1.0)))
