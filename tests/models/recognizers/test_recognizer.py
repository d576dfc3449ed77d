import pytest
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample

import mmdyt  # noqa: F401
from mmdyt.models.backbones import DyTVisionTransformer, FrameDyTVisionTransformer
from mmdyt.models.record import ForwardRecord, record_forwards
from peft_checks import assert_tuned_only_round_trip
from tiny_dyt import tiny_arch, tiny_vit, tiny_vit_cfg

DEFAULT_SCOPE = 'mmaction'
#: The tiny ViT (C=48, 3 heads) with three blocks.
TINY = tiny_arch(num_layers=3)


def build(num_classes=5, rate_loss=dict(type='ActivationRateLoss'), width=48, heads=3,
          **backbone):
    backbone = tiny_vit_cfg(num_layers=3, type='FrameDyTVisionTransformer',
                            **dict(dict(adapter_dim=8), **backbone))
    return MODELS.build(dict(
        type='DyTRecognizer3D', rate_loss=rate_loss, backbone=backbone,
        cls_head=dict(type='CrossAttentionHead', num_classes=num_classes, in_channels=width,
                      num_heads=heads)))


def randomize_peft(model):
    """Random adapters and gates: about half the tokens active, every path used."""
    torch.manual_seed(1)
    for name, param in model.backbone.named_parameters():
        if 'adapters' in name or 'dispatchers' in name:
            param.data.normal_(0, 0.5)


def samples(num):
    return [ActionDataSample().set_gt_label(torch.tensor([i % 5])) for i in range(num)]


def test_frames_go_through_the_image_vit_one_by_one():
    torch.manual_seed(0)
    model = build(num_prompts=2).eval()
    randomize_peft(model)
    clips = torch.randn(2, 3, 4, 32, 32)
    record = ForwardRecord()
    with torch.no_grad():
        tokens = model.backbone(clips, record=record)
        clip_flops = model.backbone.flops(record)
        image_vit = tiny_vit(num_layers=3, adapter_dim=8, num_prompts=2, out_type='raw').eval()
        image_vit.load_state_dict(model.backbone.state_dict())
        frame = image_vit(clips[1, :, 2][None])[0]
    assert tokens.shape == (2, 4, 1 + 16, 48)  # class token + 4x4 patches, no prompts
    torch.testing.assert_close(tokens[1, 2, 1:], frame[0])
    assert record.clip_shape == (2, 4) and record.batch_size == 8
    frame_flops = DyTVisionTransformer.flops(model.backbone, record)
    assert torch.equal(clip_flops, frame_flops.view(2, 4).sum(1))
    assert clip_flops[1] > 0 and clip_flops.shape == (2,)


@pytest.mark.parametrize('dispatch', ['mlp', 'attn', 'layer'])
def test_skipping_and_masked_paths_give_equal_clip_scores(dispatch):
    torch.manual_seed(0)
    model = build(dispatch=dispatch).eval()
    randomize_peft(model)
    clips = torch.randn(2, 3, 3, 4, 32, 32)  # 2 videos x 3 views
    with torch.no_grad():
        model.backbone.skip_inactive = False
        masked = model(clips, samples(2), mode='predict')
        model.backbone.skip_inactive = True
        skipped = model(clips, samples(2), mode='predict')
    for a, b in zip(masked, skipped):
        torch.testing.assert_close(a.pred_score, b.pred_score, atol=1e-4, rtol=1e-4)
        assert a.dyt_flops == b.dyt_flops
        torch.testing.assert_close(a.dyt_rates, b.dyt_rates)
    rates = torch.stack([s.dyt_rates for s in skipped])
    assert 0 < rates.mean() < 1


def test_predict_reports_flops_per_view_averaged_over_views():
    torch.manual_seed(0)
    model = build().eval()
    randomize_peft(model)
    clips = torch.randn(2, 3, 3, 4, 32, 32)
    with torch.no_grad(), record_forwards(model.backbone) as records:
        predictions = model(clips, samples(2), mode='predict')
        per_view = model.backbone.flops(records[0]) + model.cls_head.flops(4 * 17)
    expected = per_view.view(2, 3).mean(1)
    assert [p.dyt_flops for p in predictions] == pytest.approx(expected.tolist())
    assert predictions[0].pred_score.shape == (5,)
    # Dense frames: T x the image ViT plus the head.
    dense = build(dispatch=None, adapter_dim=None, rate_loss=None).eval()
    with torch.no_grad():
        dense_pred = dense(clips, samples(2), mode='predict')
        record = ForwardRecord()
        dense.backbone(clips[0, :1], record=record)
    frame = DyTVisionTransformer.flops(dense.backbone, record)[0].item()
    head = dense.cls_head.cross_attn.flops(4 * 17) + 48 * 5
    assert dense_pred[0].dyt_flops == pytest.approx(4 * frame + head)
    assert 'dyt_rates' not in dense_pred[0]


def test_loss_adds_rate_loss():
    model = build().train()
    losses = model(torch.randn(2, 1, 3, 4, 32, 32), samples(2), mode='loss')
    assert {'loss_cls', 'loss_rate'} <= set(losses)
    losses['loss_rate'].backward()
    assert model.backbone.blocks[0].dispatchers['mlp'].gate.weight.grad is not None
    baseline = build(dispatch=None, rate_loss=None).train()
    assert 'loss_rate' not in baseline(torch.randn(2, 1, 3, 4, 32, 32), samples(2), mode='loss')


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match='max_testing_views'):
        MODELS.build(dict(type='DyTRecognizer3D', test_cfg=dict(max_testing_views=2),
                          backbone=tiny_vit_cfg(num_layers=3, type='FrameDyTVisionTransformer',
                                                adapter_dim=8),
                          cls_head=dict(type='CrossAttentionHead', num_classes=5,
                                        in_channels=48, num_heads=3)))
    with pytest.raises(ValueError, match='out_type is fixed'):
        FrameDyTVisionTransformer(arch=TINY, out_type='cls_token')
    with pytest.raises(ValueError, match=r'\(N, C, T, H, W\)'):
        FrameDyTVisionTransformer(arch=TINY, img_size=32, patch_size=8)(torch.randn(1, 3, 32, 32))


def test_vit_b16_dense_8_frames_match_table6():
    """Dense ViT-B/16 on 8 frames at 224 + the head: Table 6 reports 142.53 G
    (8 x 17.58 for the frames, the rest is the cross-attention head)."""
    model = build(num_classes=400, rate_loss=None, width=768, heads=12, arch='b',
                  img_size=224, patch_size=16, dispatch=None, adapter_dim=None).eval()
    with torch.no_grad(), record_forwards(model.backbone) as records:
        model(torch.randn(1, 1, 3, 8, 224, 224), mode='tensor', stage='head')
    backbone = model.backbone.flops(records[0]).item() / 1e9
    head = model.cls_head.flops(8 * 197) / 1e9
    assert backbone / 8 == pytest.approx(17.58, abs=0.005)
    assert head == pytest.approx(1.87, abs=0.01)
    assert backbone + head == pytest.approx(142.53, abs=0.05)


def test_tuned_only_checkpoint_reloads_to_identical_predictions(tmp_path):
    clips = torch.randn(2, 1, 3, 4, 32, 32)

    def build_seeded(seed):
        torch.manual_seed(seed)
        return build()

    def predict(model):
        return torch.stack([s.pred_score for s in model(clips, samples(2), mode='predict')])

    assert_tuned_only_round_trip(build_seeded, predict, tmp_path)


def test_self_distillation_through_the_shared_glue():
    """The reference code's recipe on video: CE(student) + rate + CE(teacher)
    + KL(teacher || student), the teacher a dense forward of the same model."""
    from mmdyt.models.layers import all_tokens_active
    from mmdyt.models.losses import distillation_kl
    torch.manual_seed(0)
    model = build(adapter_dropout=0.0)
    model.init_dyt(dict(type='ActivationRateLoss'), dict(loss_weight=0.5, teacher_weight=2.0))
    randomize_peft(model)
    model.train()
    clips, data = torch.randn(2, 1, 3, 2, 32, 32), samples(2)
    torch.manual_seed(3)
    losses = model.loss(clips, data)
    assert {'loss_cls', 'loss_rate', 'loss_teacher', 'loss_distill'} <= set(losses)
    torch.manual_seed(3)  # the same Gumbel noise: the student's scores again
    student = model.cls_head(model.extract_feat(clips, data_samples=data)[0])
    with all_tokens_active(model.backbone.dispatchers()):
        teacher = model.cls_head(model.extract_feat(clips, data_samples=data)[0])
    teacher_ce = model.cls_head.loss_by_feat(teacher, data)['loss_cls']
    torch.testing.assert_close(losses['loss_teacher'], 2.0 * teacher_ce)
    torch.testing.assert_close(losses['loss_distill'],
                               0.5 * distillation_kl(student, teacher.detach()))
    assert losses['loss_distill'] > 0
    with pytest.raises(ValueError, match=r"distill takes \['loss_weight', 'teacher_weight'\]"):
        build().init_dyt(None, dict(weight=1.0))
    with pytest.raises(ValueError, match='distill needs a backbone with token dispatchers'):
        build(rate_loss=None, dispatch=None).init_dyt(None, dict(loss_weight=1.0))


def test_capacity_overflow_per_clip_sums_frames_and_averages_views():
    import math
    torch.manual_seed(0)
    model = build(capacity=0.5, capacity_warning=1.0).eval()
    with torch.no_grad():
        for dispatcher in model.backbone.dispatchers():
            dispatcher.gate.bias.fill_(1e4)  # every token active
        preds = model.predict(torch.randn(2, 3, 3, 2, 32, 32), samples(2))  # 2 videos x 3 views
    tokens = 1 + 16
    per_frame = len(list(model.backbone.dispatchers())) * (tokens - math.ceil(0.5 * tokens))
    assert [p.metainfo['dyt_overflow'] for p in preds] == [2 * per_frame] * 2
    model.backbone.capacity = None
    with torch.no_grad():
        assert 'dyt_overflow' not in model.predict(torch.randn(1, 1, 3, 2, 32, 32),
                                                   samples(1))[0].metainfo
