"""Exit heads, head balance and the threshold exit rule."""
import pytest
import torch

from mmdyt.models.heads.early_exit import ExitHead, balanced_head_specs, first_exit


def test_head_balance_puts_mlp_heads_first():
    specs = balanced_head_specs(4, hidden_dims=32)
    assert [s['type'] for s in specs] == ['mlp', 'mlp', 'linear', 'linear']
    assert specs[-1]['norm'] is False and 'norm' not in specs[0]
    assert [s['type'] for s in balanced_head_specs(3, num_heavy=1)] == ['mlp', 'linear', 'linear']
    with pytest.raises(ValueError, match='num_heavy must be in'):
        balanced_head_specs(2, num_heavy=3)


def test_exit_head_shapes_and_flops():
    mlp = ExitHead(48, 5, type='mlp', hidden_dims=16)
    linear = ExitHead(48, 5, type='linear', norm=False)
    x = torch.randn(3, 48)
    assert mlp(x).shape == linear(x).shape == (3, 5)
    assert mlp.flops() == 48 * 16 + 16 * 5 + 5 * 48
    assert linear.flops() == 48 * 5
    with pytest.raises(ValueError, match="exit head type must be one of"):
        ExitHead(48, 5, type='conv')


def test_exit_taken_exactly_when_threshold_met():
    conf = torch.tensor([[0.7, 0.9, 0.2],
                         [0.69999, 0.9, 0.2],
                         [0.1, 0.8, 0.2],
                         [0.1, 0.79, 0.3],
                         [1.0, 1.0, 0.3]])
    assert first_exit(conf, [0.7, 0.8, 0.5]).tolist() == [0, 1, 1, 2, 0]
    # thresholds of 1.0 disable the exits, even for a saturated softmax
    assert first_exit(conf, [1.0, 1.0, 1.0]).tolist() == [2] * 5
    with pytest.raises(ValueError, match='3 exits need as many thresholds'):
        first_exit(conf, [0.5, 0.5])
