"""Exit heads, head balance and the threshold exit rule."""
import pytest
import torch

from mmdyt.datasets import VTAB1K_TASKS
from mmdyt.models.heads.early_exit import (ExitHead, balanced_head_specs, exit_heads_summary,
                                           first_exit, mlp_head_width)


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


@pytest.mark.parametrize('num_classes', [2, 10, 100, 397, 1000, 5000])
def test_default_mlp_heads_stay_heavier_than_linear_ones_for_any_k(num_classes):
    mlp = ExitHead(768, num_classes, type='mlp')
    linear = ExitHead(768, num_classes, type='linear')
    width = mlp_head_width(768, num_classes)
    assert mlp.hidden.out_features == width
    assert mlp.num_parameters() > linear.num_parameters()
    assert width * (768 + num_classes) >= 1.5 * 768 * num_classes
    assert (width - 1) * (768 + num_classes) < 1.5 * 768 * num_classes  # the smallest
    if num_classes <= 384:
        assert width >= num_classes
    with pytest.raises(ValueError, match='ratio > 1'):
        mlp_head_width(768, num_classes, ratio=1.0)


def test_early_heads_overhead_on_vtab1k_is_the_papers_order():
    """Dyn-Adapter Table 1: the early heads add 0.12-0.17 M on VTAB-1K (ViT-B,
    T=3, S=4: MLP heads after blocks 3 and 6, a linear head after block 9;
    the head after block 12 is the baseline's)."""
    overheads = []
    for _, num_classes in VTAB1K_TASKS.values():
        specs = balanced_head_specs(4)[:3]
        overheads.append(sum(ExitHead(768, num_classes, **spec).num_parameters()
                             for spec in specs))
    mean = sum(overheads) / len(overheads) / 1e6
    assert 0.12 <= mean <= 0.17, mean
    assert round(mean, 3) == 0.157


def test_exit_heads_summary_reports_the_head_parameters():
    heads = [ExitHead(48, 5, type='mlp', hidden_dims=8), ExitHead(48, 5, norm=False)]
    mlp, linear = 96 + 48 * 8 + 8 + 8 * 5 + 5, 48 * 5 + 5
    assert heads[0].num_parameters() == mlp and heads[1].num_parameters() == linear
    assert exit_heads_summary(heads, [3, 6]) == (
        f'Exit heads: {(mlp + linear) / 1e6:.3f} M (block 3 {mlp / 1e6:.3f}, '
        f'block 6 {linear / 1e6:.3f}; {mlp / 1e6:.3f} M before the last block)')
