"""DyTImageClassifier: losses, efficiency figures, PEFT checkpoints."""
import os.path as osp

import pytest
import torch

pytest.importorskip('mmpretrain')

from mmengine.registry import DefaultScope  # noqa: E402
from mmengine.runner.checkpoint import (get_state_dict, load_checkpoint,  # noqa: E402
                                        save_checkpoint)
from mmpretrain.structures import DataSample  # noqa: E402

from mmdyt.models.peft_state import PEFT_METADATA_KEY  # noqa: E402
from tiny_dyt import tiny_classifier  # noqa: E402

RATE_LOSS = dict(type='ActivationRateLoss', target_rate=0.5, loss_weight=2.0)


def build(num_classes=5, rate_loss=RATE_LOSS, distill=None, width=48, **backbone):
    """A DyTImageClassifier on the tiny ViT with three blocks and adapters
    of 8, or on the backbone ``backbone`` (constructor arguments) makes of
    it; ``width``: the backbone's embed_dims."""
    return tiny_classifier(backbone, num_classes=num_classes, width=width, rate_loss=rate_loss,
                           distill=distill)


def batch(n=4, size=32):
    torch.manual_seed(0)
    samples = [DataSample().set_gt_label(i % 5) for i in range(n)]
    return torch.randn(n, 3, size, size), samples


def randomize_peft(model, seed=3):
    """Non-trivial adapters, gates and head (the up projections start at 0)."""
    gen = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        if param.requires_grad:
            param.data.copy_(torch.randn(param.shape, generator=gen) * 0.05)


def test_loss_has_rate_loss_and_gradients_reach_dispatchers():
    model = build()
    model.train()
    assert set(model.loss(*batch())) == {'loss', 'loss_rate'}
    model.log_efficiency = True
    losses = model.loss(*batch())
    assert set(losses) == {'loss', 'loss_rate', 'activation_rate', 'gflops',
                           'rate_layer0', 'rate_layer1', 'rate_layer2'}
    assert losses['loss_rate'].item() == pytest.approx(
        2.0 * (losses['activation_rate'].item() - 0.5)**2, rel=1e-4)
    assert 0 < losses['gflops'].item() < 1
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    gate = model.backbone.blocks[0].dispatchers['mlp'].gate.weight
    assert gate.grad is not None and gate.grad.abs().sum() > 0
    assert model.backbone.blocks[0].mlp.fc1.weight.grad is None  # frozen


def test_distillation_terms_and_student_masks_kept():
    model = build(distill=dict(loss_weight=0.5, teacher_weight=1.0))
    model.train()
    model.log_efficiency = True
    losses = model.loss(*batch())
    assert {'loss', 'loss_rate', 'loss_teacher', 'loss_distill'} <= set(losses)
    assert losses['loss_distill'].item() >= 0
    # the rates and the rate loss are the student's, not the dense teacher's
    assert losses['activation_rate'].item() < 0.99
    sum(v for k, v in losses.items() if 'loss' in k).backward()


def test_teacher_before_or_after_the_student_gives_the_same_losses():
    """Each forward has its own record: running the dense teacher first (as
    the first release had to) or last changes nothing."""
    from mmdyt.models.layers import all_tokens_active
    from mmdyt.models.losses import distillation_kl
    model = build(distill=dict(loss_weight=0.5, teacher_weight=1.0), adapter_dropout=0.0)
    randomize_peft(model)
    model.train()
    inputs, samples = batch()
    torch.manual_seed(7)
    losses = model.loss(inputs, samples)  # student first, then teacher
    torch.manual_seed(7)
    with all_tokens_active(model.dyt_backbone.dispatchers()):
        teacher_feats, teacher_records = model.recorded(model.extract_feat, inputs)
    assert teacher_records[0].activation_rates().min() == 1
    feats, record = model.features(inputs)
    expected = dict(
        loss=model.head.loss(feats, samples)['loss'],
        loss_rate=model.rate_loss(record.masks(), record.num_fixed_tokens),
        loss_teacher=model.head.loss(teacher_feats, samples)['loss'],
        loss_distill=0.5 * distillation_kl(model.head(feats), model.head(teacher_feats)))
    assert set(losses) == set(expected)
    for key, value in expected.items():
        assert torch.equal(losses[key], value), key


@pytest.mark.parametrize('backbone', [
    dict(dispatch=None, adapter_dim=None),               # linear probe
    dict(dispatch=None, adapter_dim=8),                  # AdaptFormer
    dict(dispatch=None, adapter_dim=None, petl=dict(type='lora', rank=4)),  # LoRA
    dict(dispatch=None, adapter_dim=None, num_prompts=3),  # VPT
    dict(dispatch=None, adapter_dim=None, freeze_pretrained=False),  # full
])
def test_baselines_without_rate_loss(backbone):
    model = build(rate_loss=None, **backbone)
    model.train()
    assert set(model.loss(*batch())) == {'loss'}
    model.eval()
    predictions = model.predict(batch()[0])
    assert 'dyt_rates' not in predictions[0].metainfo
    dense = build(rate_loss=None, dispatch=None, adapter_dim=None)
    dense.eval()
    dense_flops = dense.predict(batch()[0])[0].dyt_flops
    if backbone.get('adapter_dim') is None and not backbone.get('num_prompts'):
        assert predictions[0].dyt_flops >= dense_flops


def test_rate_loss_without_dispatcher_is_an_error():
    with pytest.raises(ValueError, match='rate_loss needs a backbone with token dispatchers'):
        build(dispatch=None)
    with pytest.raises(ValueError, match='distill needs'):
        build(dispatch=None, rate_loss=None, distill=dict(loss_weight=1.0))
    with pytest.raises(ValueError, match='distill takes'):
        build(distill=dict(weight=1.0))


def test_predict_attaches_backbone_plus_head_flops_and_rates():
    model = build()
    model.eval()
    inputs, samples = batch()
    predictions = model.predict(inputs, samples)
    _, record = model.features(inputs)
    flops = model.backbone.flops(record)
    head = 48 * 5
    for i, sample in enumerate(predictions):
        assert sample.dyt_flops == pytest.approx(flops[i].item() + head)
        assert sample.dyt_rates.shape == (3, )
    dense = build(rate_loss=None, dispatch=None, adapter_dim=None)
    dense.eval()
    dense_flops = dense.predict(inputs)[0].dyt_flops
    # fewer FLOPs than the dense ViT unless every token is active
    assert all(s.dyt_flops < dense_flops or
               bool((s.dyt_rates == 1).all()) for s in predictions)


def test_efficiency_metric_in_the_mmpretrain_evaluator():
    from mmengine.evaluator import Evaluator
    model = build()
    model.eval()
    inputs, samples = batch()
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        evaluator = Evaluator([dict(type='Accuracy', topk=(1, )),
                               dict(type='EfficiencyMetric')])
    evaluator.process(model.predict(inputs, samples))
    metrics = evaluator.evaluate(len(samples))
    assert {'accuracy/top1', 'efficiency/gflops', 'efficiency/activation_rate',
            'efficiency/rate_layer2'} <= set(metrics)
    _, record = model.features(inputs)
    assert metrics['efficiency/gflops'] == pytest.approx(
        (model.backbone.flops(record).mean().item() + 48 * 5) / 1e9)


def test_peft_state_dict_round_trip_tiny(tmp_path):
    base = build()
    base_path = str(tmp_path / 'base.pth')
    torch.save(base.backbone.state_dict(), base_path)
    model = build(pretrained=base_path)
    model.init_weights()
    randomize_peft(model)
    state = model.state_dict()
    assert all(model.backbone.is_tuning_parameter(k[len('backbone.'):]) or
               k.startswith('head.') for k in state)
    assert state._metadata[''][PEFT_METADATA_KEY] == base_path

    fresh = build(pretrained=base_path)  # base weights not loaded yet
    fresh.load_state_dict(state, strict=True)
    for key, value in model.state_dict(keep_vars=False).items():
        assert torch.equal(fresh.state_dict()[key], value)
    assert torch.equal(fresh.backbone.blocks[1].mlp.fc1.weight,
                       base.backbone.blocks[1].mlp.fc1.weight)


def test_full_checkpoint_loads_and_missing_base_is_an_error(tmp_path):
    model = build()  # no pretrained: saves everything
    randomize_peft(model)
    state = model.state_dict()
    assert 'backbone.blocks.0.mlp.fc1.weight' in state
    fresh = build()
    fresh.load_state_dict(state, strict=True)
    assert torch.equal(fresh.backbone.blocks[0].mlp.fc1.weight,
                       model.backbone.blocks[0].mlp.fc1.weight)
    partial = {k: v for k, v in state.items() if 'mlp.fc1' not in k}
    with pytest.raises(ValueError, match='names no base checkpoint'):
        build().load_state_dict(partial)


def test_dyt_vit_b16_d64_checkpoint_is_small_and_reloads_identically(tmp_path):
    """Real ViT-B/16 size, DyT d=64, CIFAR-100 head: a checkpoint saved the
    way the runner saves one (get_state_dict + save_checkpoint) holds only the
    trainable weights; a fresh model loading it takes its frozen weights from
    the named base checkpoint and predicts exactly as the saved model."""
    kwargs = dict(arch='b', width=768, img_size=224, patch_size=16, num_classes=100,
                  adapter_dim=64, adapter_scale=0.1)
    base = build(**kwargs)
    base_path = str(tmp_path / 'vit-b16_base.pth')
    torch.save({'state_dict': base.backbone.state_dict()}, base_path)
    model = build(pretrained=base_path, **kwargs)
    model.init_weights()
    randomize_peft(model)
    ckpt = str(tmp_path / 'dyt_vit-b16_d64.pth')
    save_checkpoint({'meta': {}, 'state_dict': get_state_dict(model)}, ckpt)
    size_mb = osp.getsize(ckpt) / 2**20
    assert size_mb < 6.0, size_mb
    assert osp.getsize(base_path) / 2**20 > 300  # the frozen ViT-B stays out

    fresh = build(pretrained=base_path, **kwargs)
    load_checkpoint(fresh, ckpt, strict=True)
    model.eval()
    fresh.eval()
    inputs = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = [s.pred_score for s in model.predict(inputs)]
        got = [s.pred_score for s in fresh.predict(inputs)]
    for a, b in zip(expected, got):
        assert torch.equal(a, b)


def test_distillation_teacher_does_not_warn_about_a_missing_rate_loss(monkeypatch, recwarn):
    """The dense teacher runs without a record but with every dispatcher
    forced on: no gate trains there, so the missing-rate-loss warning (for
    plain toolbox models) must not fire."""
    from mmdyt.models.backbones import base
    monkeypatch.setattr(base, '_WARNED', set())
    model = build(distill=dict(loss_weight=1.0)).train()
    model.loss(*batch())
    assert not [w for w in recwarn if 'no ForwardRecord' in str(w.message)]
