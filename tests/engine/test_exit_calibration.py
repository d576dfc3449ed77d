"""Calibration of the exit thresholds to a FLOPs budget."""
import pytest
import torch

from mmdyt.engine.exit_calibration import (calibrate_per_exit, calibrate_thresholds, exit_summary,
                                           format_exit_table)
from mmdyt.models.heads.early_exit import first_exit


def test_calibration_meets_budget_with_the_highest_threshold():
    torch.manual_seed(0)
    conf = torch.rand(200, 3)
    cum = torch.tensor([1.0, 2.0, 3.0]).expand(200, 3).double()
    for budget in (1.2, 1.5, 2.0, 2.9):
        thresholds = calibrate_thresholds(conf, cum, budget)
        exits = first_exit(conf, thresholds)
        assert cum.gather(1, exits[:, None]).mean() <= budget
        # the next higher candidate threshold would overspend
        higher = conf[:, :-1][conf[:, :-1] > thresholds[0]].min()
        exits = first_exit(conf, [higher] * 2 + [0.0])
        assert cum.gather(1, exits[:, None]).mean() > budget
    assert calibrate_thresholds(conf, cum, 3.0)[0] == 1.0
    with pytest.raises(ValueError, match='below the cost of exiting at the first head'):
        calibrate_thresholds(conf, cum, 0.5)


def synthetic_exits(num=300, seed=0):
    """Three exits whose confidence predicts correctness, costs 1 / 2 / 3."""
    gen = torch.Generator().manual_seed(seed)
    conf = torch.rand(num, 3, generator=gen)
    correct = torch.rand(num, 3, generator=gen) < conf * torch.tensor([0.8, 0.95, 1.0])
    cum = torch.tensor([1.0, 2.0, 3.0]).expand(num, 3).double()
    return conf, correct, cum


def test_per_exit_calibration_meets_the_budget_and_is_monotone():
    conf, correct, cum = synthetic_exits()
    previous = None
    for budget in (1.3, 1.6, 2.0, 2.4, 2.9):
        thresholds = calibrate_per_exit(conf, correct, cum, budget)
        assert len(thresholds) == 3 and thresholds[-1] == 0.0
        exits = first_exit(conf, thresholds)
        assert cum.gather(1, exits[:, None]).mean() <= budget
        if previous is not None:  # a larger budget never lowers a threshold
            assert all(a >= b for a, b in zip(thresholds, previous))
        previous = thresholds
    assert calibrate_per_exit(conf, correct, cum, 3.0)[:2] == [1.0, 1.0]
    with pytest.raises(ValueError, match='below the cost of exiting at the first head'):
        calibrate_per_exit(conf, correct, cum, 0.5)


def test_per_exit_thresholds_differ_where_the_exits_do():
    """The first exit is much less accurate at the same confidence: the
    search keeps its threshold higher than the second's."""
    conf, correct, cum = synthetic_exits(600)
    correct[:, 0] = torch.rand(600, generator=torch.Generator().manual_seed(5)) < conf[:, 0] * 0.3
    thresholds = calibrate_per_exit(conf, correct, cum, 2.2)
    assert thresholds[0] > thresholds[1]
    per_exit_acc = exit_summary(conf, correct, cum, thresholds)[0]
    shared_acc = exit_summary(conf, correct, cum, calibrate_thresholds(conf, cum, 2.2))[0]
    assert per_exit_acc >= shared_acc


def test_exit_summary_table():
    conf, correct, cum = synthetic_exits()
    thresholds = [0.9, 0.8, 0.0]
    accuracy, flops, histogram, per_exit = exit_summary(conf, correct, cum, thresholds)
    exits = first_exit(conf, thresholds)
    assert histogram == torch.bincount(exits, minlength=3).tolist()
    assert [row['share'] for row in per_exit] == pytest.approx([h / 300 for h in histogram])
    right = correct[torch.arange(300), exits]
    assert per_exit[1]['accuracy'] == pytest.approx(100 * right[exits == 1].double().mean())
    table = format_exit_table(per_exit)
    assert table.splitlines()[0].split() == ['exit', 'threshold', 'share', 'accuracy']
    assert '0.9000' in table and 'last' in table
