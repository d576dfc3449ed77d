"""EarlyExitClassifier: losses, batched dynamic inference, FLOPs, metric."""
import pytest
import torch

pytest.importorskip('mmpretrain')
from mmengine.registry import DefaultScope  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402

from mmdyt.evaluation import EarlyExitMetric  # noqa: E402
from mmdyt.models.flops import conv_patch_flops  # noqa: E402
from mmdyt.models.heads.early_exit import first_exit  # noqa: E402
from mmdyt.models.record import BlockRecord, ForwardRecord  # noqa: E402
from peft_checks import assert_tuned_only_round_trip  # noqa: E402
from tiny_dyt import tiny_vit_cfg  # noqa: E402

#: PETL settings of the tiny ViT (six blocks: three stages at exit_interval=2).
BACKBONES = {
    'adapter': dict(dispatch=None, adapter_dim=None, petl=dict(type='houlsby', dim=8)),
    'lora': dict(dispatch=None, adapter_dim=None, petl=dict(type='lora', rank=4)),
    'rep_adapter': dict(dispatch=None, adapter_dim=None, petl=dict(type='rep_adapter')),
    'dyt': dict(dispatch='mlp', adapter_dim=8),
    'vpt': dict(dispatch=None, adapter_dim=None, num_prompts=3),
}


def build(setting='rep_adapter', **kwargs):
    torch.manual_seed(0)
    kwargs.setdefault('exit_interval', 2)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(
            type='EarlyExitClassifier', num_classes=5,
            backbone=tiny_vit_cfg(num_layers=6, **BACKBONES[setting]), **kwargs))
    for name, param in model.named_parameters():  # no zero-initialised branches
        if param.requires_grad:
            param.data.normal_(0, 0.2)
    return model.eval()


def samples(n):
    return [DataSample().set_gt_label(i % 5) for i in range(n)]


@pytest.mark.parametrize('setting', sorted(BACKBONES))
def test_thresholds_one_equal_the_last_head(setting):
    model = build(setting)
    x = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        last = model(x)[-1].softmax(-1)
        preds = model.predict(x, samples(6))
    torch.testing.assert_close(torch.stack([p.pred_score for p in preds]), last)
    assert [p.exit_index for p in preds] == [2] * 6


@pytest.mark.parametrize('setting', ['rep_adapter', 'dyt'])
def test_dynamic_inference_matches_the_exit_rule(setting):
    model = build(setting)
    x = torch.randn(12, 3, 32, 32)
    with torch.no_grad():
        exits, _ = model.run_exits(x)
        conf = torch.stack([logits.softmax(-1).max(-1).values for _, logits, _ in exits], 1)
        thresholds = [conf[:, 0].median().item(), conf[:, 1].median().item(), 1.0]
        model.thresholds = thresholds
        preds = model.predict(x, samples(12))
    expected = first_exit(conf, thresholds)
    assert 0 < (expected == 0).sum() < 12 and (expected == 2).any()
    assert [p.exit_index for p in preds] == expected.tolist()
    for i, p in enumerate(preds):
        j = expected[i]
        torch.testing.assert_close(p.pred_score, exits[j][1][i].softmax(-1))
        assert p.dyt_flops == pytest.approx(exits[j][2][i].item())


def test_rates_of_exited_samples_cover_only_the_blocks_they_ran():
    model = build('dyt')
    x = torch.randn(12, 3, 32, 32)
    with torch.no_grad():
        exits, _ = model.run_exits(x)
        conf = exits[0][1].softmax(-1).max(-1).values
        model.thresholds = [conf.median().item(), 1.0, 1.0]
        exits, record = model.run_exits(x, model.thresholds)
    rates = record.per_sample_rates()
    left = torch.ones(12, dtype=torch.bool)
    left[exits[1][0].cpu()] = False
    assert 0 < left.sum() < 12
    assert (rates[left, 2:] == 0).all() and (rates[:, :2] > 0).any()
    full = ForwardRecord()
    model.backbone(x, record=full)
    torch.testing.assert_close(rates[~left], full.per_sample_rates()[~left])


def test_exited_samples_leave_the_batch():
    model = build()
    seen = []
    for block in model.backbone.blocks:
        block.register_forward_hook(lambda m, args, out: seen.append(out.shape[0]))
    model.thresholds = [0.0, 1.0, 1.0]  # everyone leaves at the first exit
    model.predict(torch.randn(4, 3, 32, 32))
    assert seen == [4, 4]
    seen.clear()
    model.thresholds = [1.0, 0.0, 1.0]
    model.predict(torch.randn(4, 3, 32, 32))
    assert seen == [4, 4, 4, 4]


def test_flops_of_an_early_exit_count_only_what_ran():
    model = build('lora')
    backbone = model.backbone
    x = torch.randn(3, 3, 32, 32)
    model.thresholds = [0.0, 0.0, 0.0]
    preds = model.predict(x)
    n = 17
    ran = conv_patch_flops(backbone.patch_embed.proj, n - 1) + model.heads[0].flops() + \
        sum(b.flops(BlockRecord(index=i, num_tokens=n)) for i, b in enumerate(backbone.blocks[:2]))
    assert all(p.dyt_flops == ran for p in preds)
    model.thresholds = [1.0, 1.0, 1.0]
    preds = model.predict(x)
    record = ForwardRecord()
    backbone(x, record=record)  # the backbone's own count of a full forward
    full = backbone.flops(record)[0].item() + sum(h.flops() for h in model.heads)
    assert all(p.dyt_flops == pytest.approx(full) for p in preds)
    assert ran < 0.5 * full


def test_loss_is_weighted_sum_and_dyt_rate_loss():
    model = build('dyt', rate_loss=dict(type='ActivationRateLoss', target_rate=0.5)).train()
    x = torch.randn(4, 3, 32, 32)
    losses = model.loss(x, samples(4))
    assert set(losses) == {'loss_exit0', 'loss_exit1', 'loss_exit2', 'loss_rate'}
    model.set_loss_weights([0.0, 0.5, 1.0])
    torch.manual_seed(0)
    weighted = model.loss(x, samples(4))
    assert weighted['loss_exit0'] == 0
    with pytest.raises(ValueError, match='loss_weights needs one value per exit'):
        model.set_loss_weights([1.0])


def test_stage_dropout_and_bad_arguments():
    model = build('adapter', stage_dropout=dict(shallow=0.5, deep=0.1), num_shallow_stages=1)
    rates = {n.split('.')[2]: m.p for n, m in model.named_modules()
             if isinstance(m, torch.nn.Dropout) and n.startswith('backbone.')}
    assert rates == {'0': 0.5, '1': 0.5, '2': 0.1, '3': 0.1, '4': 0.1, '5': 0.1}
    with pytest.raises(ValueError, match='exit_interval=4 must divide'):
        build(exit_interval=4)
    with pytest.raises(ValueError, match='must increase from >= 1 to the last block'):
        build(exit_layers=[2, 4])
    with pytest.raises(ValueError, match='3 exits need 3 head specs'):
        build(heads=[dict(type='linear')])


def test_metric_reports_accuracy_flops_and_histogram():
    metric = EarlyExitMetric()
    rows = [(0, 0, 0, 1e9), (1, 1, 2, 3e9), (2, 0, 2, 3e9), (3, 3, 0, 1e9)]
    metric.process({}, [dict(pred_label=torch.tensor([p]), gt_label=torch.tensor([g]),
                             exit_index=e, num_exits=3, dyt_flops=f) for p, g, e, f in rows])
    result = metric.compute_metrics(metric.results)
    assert result['accuracy'] == 75.0 and result['gflops'] == 2.0
    assert (result['exit0_ratio'], result['exit1_ratio'], result['exit2_ratio']) == (0.5, 0, 0.5)
    assert result['exit0_accuracy'] == 100.0 and result['exit2_accuracy'] == 50.0
    assert 'exit1_accuracy' not in result


def test_tuned_only_checkpoint_reloads_to_identical_predictions(tmp_path):
    x = torch.randn(3, 3, 32, 32)

    def build_seeded(seed):
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            torch.manual_seed(seed)
            return MODELS.build(dict(
                type='EarlyExitClassifier', num_classes=5, exit_interval=2,
                backbone=tiny_vit_cfg(num_layers=6, **BACKBONES['dyt']))).train()

    def predict(model):
        return torch.stack([s.pred_score for s in model.predict(x)])

    assert_tuned_only_round_trip(build_seeded, predict, tmp_path)


def exits_and_backbone_output(model, x, out_type):
    """The exits of ``model`` on ``x`` and its backbone's own ``out_type``
    output after block 2 (the first exit's block), for comparison."""
    with torch.no_grad():
        exits, record = model.run_exits(x)
        model.backbone.out_type = out_type
        model.backbone.out_indices = [1]
        return exits, record, model.backbone(x)[0]


def test_vpt_prompts_go_through_the_stepping_api():
    """Each stage puts its blocks' prompts in: early exits of a VPT-deep
    backbone equal running the backbone to that block."""
    model = build('vpt')
    exits, record, cls_after_block2 = exits_and_backbone_output(
        model, torch.randn(2, 3, 32, 32), 'cls_token')
    torch.testing.assert_close(exits[0][1], model.heads[0](cls_after_block2))
    assert record.num_tokens == 1 + 3 + 16
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        exits, _ = model.run_exits(x)
        model.thresholds = [exits[0][1].softmax(-1).max(-1).values.median().item(), 1.0, 1.0]
        preds = model.predict(x)
    left = [p.exit_index == 0 for p in preds]
    assert 0 < sum(left) < 8
    for i, p in enumerate(preds):
        j = 0 if left[i] else 2
        torch.testing.assert_close(p.pred_score, exits[j][1][i].softmax(-1))
    trainable = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    assert trainable == {'prompts'}


def test_avg_featmap_exits_read_the_mean_patch_token():
    """MAE's recipe pools globally: every exit reads the mean patch token."""
    model = build('lora', feature='avg_featmap')
    exits, _, pooled = exits_and_backbone_output(model, torch.randn(2, 3, 32, 32),
                                                 'avg_featmap')
    torch.testing.assert_close(exits[0][1], model.heads[0](pooled))
    with pytest.raises(ValueError, match='feature must be one of'):
        build('lora', feature='gap')


def test_capacity_mode_overflow_is_warned_about_and_attached():
    """Early exits drive the stepping API: in capacity mode the active tokens
    left out are warned about and reach the predictions (``dyt_overflow``)."""
    model = build('dyt')
    model.backbone.capacity = 0.3
    with torch.no_grad():
        for dispatcher in model.backbone.dispatchers():
            dispatcher.gate.bias.fill_(1e4)  # every token active: 70 % left out
    with pytest.warns(UserWarning, match='capacity mode .* left out'):
        predictions = model.predict(torch.randn(3, 3, 32, 32), samples(3))
    assert all(float(p.dyt_overflow) > 0 for p in predictions)


def test_nan_thresholds_are_refused():
    with pytest.raises(ValueError, match='thresholds must be numbers, got NaN'):
        build(thresholds=[float('nan'), 1.0, 1.0])
