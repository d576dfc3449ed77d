"""Calibration of the exit thresholds to a FLOPs budget."""
import pytest
import torch

from mmdyt.engine.exit_calibration import calibrate_thresholds
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
