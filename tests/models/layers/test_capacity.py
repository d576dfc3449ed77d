"""Capacity mode of dispatched_part / DyTVisionTransformer(capacity=...):
a fixed ceil(capacity * N) tokens per sample, chosen by gate logit; equal to
the skipping path while no sample overflows, overflow counted and warned
about, FLOPs of what it computes, static shapes."""
import math
import warnings

import pytest
import torch

from mmdyt.models.layers import TokenDispatcher, capacity_tokens, dispatched_part
from mmdyt.models.record import ForwardRecord
from tiny_dyt import ARCH, NUM_TOKENS as N, images, tiny_dyt


def forward(model, x):
    record = ForwardRecord()
    with torch.no_grad():
        out = model(x, record=record)[0]
    return out, record


@pytest.mark.parametrize('num_experts', [1, 4], ids=['adapter', 'moe'])
@pytest.mark.parametrize('dispatch', ['mlp', 'attn', 'attn_mlp', 'layer'])
def test_equals_the_threshold_path_when_nothing_overflows(dispatch, num_experts):
    model, x = tiny_dyt(dispatch, num_experts, num_layers=2), images(3)
    expected, record = forward(model, x)
    most = max(int(mask.sum(1).max()) for mask in record.masks())
    assert most < N  # the case is not trivial
    model.capacity = most / N
    out, capacity_record = forward(model, x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    assert capacity_record.overflow_share() == 0.0
    assert capacity_record.overflow_counts().tolist() == [0.0] * 3
    assert all(block.capacity == {part: most for part in block.masks}
               for block in capacity_record.blocks)
    for a, b in zip(record.masks(), capacity_record.masks()):
        assert torch.equal(a, b)  # the record keeps the threshold masks


def test_overflow_on_a_constructed_case():
    """Gate logit = channel 0; sample 0 has 5 active patch tokens, sample 1
    two; capacity 5 of 9 tokens keeps the class token and the 4 highest."""
    dispatcher = TokenDispatcher(4, num_fixed_tokens=1)
    with torch.no_grad():
        dispatcher.gate.weight.copy_(torch.tensor([[1.0, 0, 0, 0]]))
        dispatcher.gate.bias.zero_()
    dispatcher.eval()
    x = torch.randn(2, 9, 4)
    logits = torch.tensor([[9.0, 5, 4, 3, 2, 1, -1, -2, -3],
                           [9.0, -5, 2, -4, -3, 1, -1, -2, -6]])
    x[..., 0] = logits
    out, outcome = dispatched_part(x, lambda t, **kwargs: torch.ones_like(t), dispatcher,
                                   skip_inactive=True, capacity=5 / 9)
    mask = outcome.mask
    assert outcome.capacity == 5 and outcome.overflow.tolist() == [1, 0]
    computed = torch.isclose(out - x, torch.ones(()))[..., 1]
    assert computed[0].tolist() == [True, True, True, True, True, False, False, False, False]
    assert computed[1].tolist() == [True, False, True, False, False, True, False, False, False]
    assert torch.equal(mask[1], computed[1])


def test_all_tokens_forced_active_computes_the_first_k():
    """Under ``force_all_active`` there are no logits to rank by: the first
    k tokens are computed, the others counted as overflow."""
    dispatcher = TokenDispatcher(4).eval()
    dispatcher.force_all_active = True
    x = torch.randn(2, 9, 4)
    out, outcome = dispatched_part(x, lambda t, **kwargs: torch.ones_like(t), dispatcher,
                                   skip_inactive=True, capacity=4 / 9)
    mask = outcome.mask
    assert mask.all() and outcome.capacity == 4 and outcome.overflow.tolist() == [5, 5]
    computed = torch.isclose(out - x, torch.ones(()))[..., 0]
    assert computed.tolist() == [[True] * 4 + [False] * 5] * 2


def test_overflow_is_counted_and_warned_about():
    model, x = tiny_dyt('attn_mlp', capacity=0.5, num_layers=2), images(3)
    with torch.no_grad():
        for dispatcher in model.dispatchers():
            dispatcher.gate.bias.fill_(1e4)  # every token active
    k = math.ceil(0.5 * N)
    with pytest.warns(UserWarning, match=r'left out 47\.1% of the active tokens'):
        _, record = forward(model, x)
    assert record.overflow_counts().tolist() == [4.0 * (N - k)] * 3  # 4 dispatchers
    assert record.overflow_share() == pytest.approx((N - k) / N)
    model.capacity_warning = 0.5
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        forward(model, x)


def test_flops_count_the_fixed_token_number():
    model, x = tiny_dyt('mlp', capacity=0.5, num_layers=2), images(3)
    _, record = forward(model, x)
    k = math.ceil(0.5 * N)
    block = model.blocks[0]
    ln = 5 * ARCH['embed_dims']
    expected = (ln * N + block.attn.flops(N) + ln * k + block.mlp.flops(k) +
                block.adapters['mlp'].flops(N) + block.dispatchers['mlp'].flops(N))
    parts = model.flops_by_part(record)
    assert parts['block0'].tolist() == [expected] * 3 == parts['block1'].tolist()
    model.capacity = None
    _, threshold = forward(model, x)
    assert not torch.equal(model.flops(threshold), model.flops(record))


def test_static_shapes_export_without_data_dependent_ops():
    model, x = tiny_dyt('attn', capacity=0.6, num_layers=2), images(2)
    program = torch.export.export(model, (x, ))
    ops = {str(node.target) for node in program.graph.nodes}
    assert not any('nonzero' in op for op in ops)
    torch.testing.assert_close(program.module()(x)[0], forward(model, x)[0])


def test_capacity_only_in_evaluation_and_checked():
    model = tiny_dyt('mlp', capacity=0.5, num_layers=2).train()
    record = ForwardRecord()
    model(images(2), record=record)
    assert all(not block.capacity for block in record.blocks)
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match='capacity must be a number in'):
            tiny_dyt(capacity=bad, num_layers=2)
    assert capacity_tokens(0.5, 17) == 9 and capacity_tokens(1.0, 17) == 17


def test_efficiency_metric_reports_the_overflow():
    from mmengine.evaluator import Evaluator
    from mmengine.registry import MODELS, DefaultScope
    from mmpretrain.structures import DataSample
    cfg = dict(type='DyTImageClassifier',
               backbone=dict(type='DyTVisionTransformer', arch=dict(ARCH, num_layers=2),
                             img_size=32, patch_size=8, adapter_dim=8, capacity=0.5,
                             capacity_warning=1.0),
               head=dict(type='LinearClsHead', num_classes=3, in_channels=48),
               rate_loss=dict(type='ActivationRateLoss', target_rate=0.5))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg).eval()
        evaluator = Evaluator([dict(type='EfficiencyMetric')])
    with torch.no_grad():
        for dispatcher in model.backbone.dispatchers():
            dispatcher.gate.bias.fill_(1e4)
    samples = [DataSample().set_gt_label(0) for _ in range(3)]
    with torch.no_grad():
        evaluator.process(model.predict(images(3), samples))
    metrics = evaluator.evaluate(3)
    k = math.ceil(0.5 * N)
    assert metrics['efficiency/capacity_overflow'] == 2 * (N - k)  # 2 mlp dispatchers
    model.backbone.capacity = None
    with torch.no_grad():
        evaluator.process(model.predict(images(3), [DataSample() for _ in range(3)]))
    assert 'efficiency/capacity_overflow' not in evaluator.evaluate(3)


def test_overflow_of_the_per_frame_video_backbone_is_warned_about():
    from mmdyt.models.backbones import FrameDyTVisionTransformer
    model = FrameDyTVisionTransformer(arch=ARCH, img_size=32, patch_size=8, adapter_dim=8,
                                      capacity=0.5).eval()
    with torch.no_grad():
        for dispatcher in model.dispatchers():
            dispatcher.gate.bias.fill_(1e4)  # every token active
        with pytest.warns(UserWarning, match='capacity mode .* left out'):
            model(torch.randn(1, 3, 2, 32, 32))
