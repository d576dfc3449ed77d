"""EarlyExitRecognizer3D: video early exits (Dyn-Adapter Table 7)."""
import pytest
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample

from mmdyt.models.record import ForwardRecord
from peft_checks import assert_tuned_only_round_trip
from tiny_dyt import tiny_vit_cfg

DEFAULT_SCOPE = 'mmaction'
#: PETL settings of the tiny ViT (four blocks: two stages at exit_interval=2).
BACKBONES = {
    'rep_adapter': dict(dispatch=None, adapter_dim=None, petl=dict(type='rep_adapter', dim=4)),
    'dyt': dict(dispatch='mlp', adapter_dim=8),
}


def build(setting='rep_adapter', seed=0, **kwargs):
    torch.manual_seed(seed)
    kwargs.setdefault('exit_interval', 2)
    model = MODELS.build(dict(
        type='EarlyExitRecognizer3D', num_classes=5, num_heads=3,
        backbone=tiny_vit_cfg(num_layers=4, type='FrameDyTVisionTransformer',
                              **BACKBONES[setting]), **kwargs))
    for param in model.parameters():  # no zero-initialised branches
        if param.requires_grad:
            param.data.normal_(0, 0.2)
    return model.eval()


def samples(num):
    return [ActionDataSample().set_gt_label(torch.tensor([i % 5])) for i in range(num)]


def clips(num_videos, num_views=1, frames=3):
    return torch.randn(num_videos, num_views, 3, frames, 32, 32,
                       generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize('setting', sorted(BACKBONES))
def test_thresholds_one_equal_the_last_head(setting):
    model = build(setting)
    x = clips(3, num_views=2)
    with torch.no_grad():
        last = model(x)[-1].softmax(-1).view(3, 2, 5).mean(1)
        preds = model.predict(x, samples(3))
    torch.testing.assert_close(torch.stack([p.pred_score for p in preds]), last)
    assert [p.exit_index for p in preds] == [1, 1, 1]


@pytest.mark.parametrize('setting', sorted(BACKBONES))
def test_exactly_the_clips_at_or_above_the_threshold_leave(setting):
    model = build(setting)
    x = clips(8)
    with torch.no_grad():
        exits, _ = model.run_exits(x)
        confidence = exits[0][1].softmax(-1).max(-1).values
        threshold = confidence.median().item()
        model.thresholds = [threshold, 1.0]
        preds = model.predict(x, samples(8))
    left = (confidence >= threshold).tolist()
    assert 0 < sum(left) < 8
    assert [p.exit_index for p in preds] == [0 if gone else 1 for gone in left]
    for i, p in enumerate(preds):
        expected = exits[0 if left[i] else 1][1][i].softmax(-1)
        torch.testing.assert_close(p.pred_score, expected)


def test_exited_clips_leave_the_batch_with_all_their_frames():
    model = build()
    seen = []
    for block in model.backbone.blocks:
        block.register_forward_hook(lambda m, args, out: seen.append(out.shape[0]))
    model.thresholds = [0.0, 1.0]  # every clip leaves at the first exit
    with torch.no_grad():
        model.predict(clips(2, frames=3))
    assert seen == [6, 6]  # blocks 1-2 of 2 clips x 3 frames, blocks 3-4 not run


@pytest.mark.parametrize('setting', sorted(BACKBONES))
def test_flops_of_an_exited_clip_count_only_what_it_ran(setting):
    model = build(setting)
    x = clips(2, frames=3)
    record = ForwardRecord()
    with torch.no_grad():
        model.backbone(x[:, 0].contiguous(), record=record)  # the backbone's own full count
        tokens = 3 * 17  # frames x (class token + 16 patches)
        model.thresholds = [0.0, 1.0]
        early = model.predict(x)
        model.thresholds = [1.0, 1.0]
        full = model.predict(x)
    ran = model.backbone.flops(record, stop=2) + model.heads[0].flops(tokens)
    assert [p.dyt_flops for p in early] == pytest.approx(ran.tolist())
    everything = model.backbone.flops(record) + sum(h.flops(tokens) for h in model.heads)
    assert [p.dyt_flops for p in full] == pytest.approx(everything.tolist())
    assert all(e.dyt_flops < 0.75 * f.dyt_flops for e, f in zip(early, full))


def test_loss_per_exit_and_rate_loss_reach_the_parameters():
    model = build('dyt', rate_loss=dict(type='ActivationRateLoss', target_rate=0.5)).train()
    losses = model(clips(2), samples(2), mode='loss')
    assert set(losses) == {'loss_exit0', 'loss_exit1', 'loss_rate'}
    sum(losses.values()).backward()
    assert model.heads[0].query.query.grad is not None
    assert model.backbone.blocks[0].dispatchers['mlp'].gate.weight.grad is not None


def test_bad_backbone_is_refused():
    with pytest.raises(TypeError, match='needs a FrameDyTVisionTransformer backbone'):
        MODELS.build(dict(type='EarlyExitRecognizer3D', num_classes=5,
                          backbone=tiny_vit_cfg(num_layers=4)))


def test_tuned_only_checkpoint_reloads_to_identical_predictions(tmp_path):
    x = clips(2)

    def predict(model):
        return torch.stack([s.pred_score for s in model.predict(x)])

    assert_tuned_only_round_trip(lambda seed: build(seed=seed).train(), predict, tmp_path)
