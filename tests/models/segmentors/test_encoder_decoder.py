"""DyTEncoderDecoder: rate loss in training, real skipping and per-image
efficiency figures in whole-image and sliding-window inference."""
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmdyt.models.backbones import DyTVisionTransformer
from mmdyt.models.record import ForwardRecord
from .tiny import FULL_CONFIG, build_tiny
from peft_checks import assert_tuned_only_round_trip


def run(backbone, inputs):
    record = ForwardRecord()
    backbone(inputs, record=record)
    return record


def make_batch(batch_size=2, height=64, width=96, num_classes=150):
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch_size, 3, height, width, generator=g)
    samples = []
    for _ in range(batch_size):
        sample = SegDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width),
            pad_shape=(height, width), padding_size=[0, 0, 0, 0]))
        labels = torch.randint(0, num_classes, (1, height, width), generator=g)
        sample.gt_sem_seg = PixelData(data=labels)
        samples.append(sample)
    return inputs, samples


@pytest.fixture(scope='module')
def dyt_model():
    torch.manual_seed(0)
    return build_tiny().eval()


def test_loss_has_rate_loss_and_head_losses():
    torch.manual_seed(0)
    model = build_tiny()
    inputs, samples = make_batch(height=64, width=64)
    model.log_efficiency = True
    losses = model.loss(inputs, samples)
    assert {'decode.loss_ce', 'aux.loss_ce', 'loss_rate', 'activation_rate'} <= set(losses)
    rate = losses['activation_rate'].item()
    assert losses['loss_rate'].item() == pytest.approx(2.0 * (rate - 0.5)**2, abs=1e-5)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    gate = model.dyt_backbone.blocks[0].dispatchers['mlp'].gate.weight
    assert gate.grad is not None and gate.grad.abs().sum() > 0
    assert model.dyt_backbone.blocks[0].mlp.fc1.weight.grad is None  # frozen ViT


def test_baseline_has_no_rate_loss():
    model = build_tiny(FULL_CONFIG)
    inputs, samples = make_batch(height=64, width=64)
    losses = model.loss(inputs, samples)
    assert 'loss_rate' not in losses
    assert isinstance(model.backbone, DyTVisionTransformer)


@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_skipping_and_masked_paths_give_same_logits(dyt_model, mode):
    dyt_model.test_cfg.mode = mode
    inputs, samples = make_batch()
    with torch.no_grad():
        dyt_model.dyt_backbone.skip_inactive = True
        skipped = dyt_model.predict(inputs, [s.clone() for s in samples])
        rates = torch.stack([s.metainfo['dyt_rates'] for s in skipped])
        dyt_model.dyt_backbone.skip_inactive = False
        masked = dyt_model.predict(inputs, [s.clone() for s in samples])
    dyt_model.dyt_backbone.skip_inactive = True
    assert 0.1 < rates.mean() < 0.9  # tokens really are skipped
    for a, b in zip(skipped, masked):
        assert a.seg_logits.data.shape == (150, 64, 96)
        torch.testing.assert_close(a.seg_logits.data, b.seg_logits.data, atol=1e-4, rtol=0)
        assert a.metainfo['dyt_flops'] == b.metainfo['dyt_flops']


def test_slide_flops_are_summed_over_windows(dyt_model):
    dyt_model.test_cfg.mode = 'slide'
    inputs, samples = make_batch()
    backbone = dyt_model.dyt_backbone
    with torch.no_grad():
        preds = dyt_model.predict(inputs, samples)
        # 64 x 96 image, 64 x 64 crops, stride 43: windows at x = 0 and x = 32
        flops, rates = [], []
        for x1 in (0, 32):
            record = run(backbone, inputs[:, :, :, x1:x1 + 64])
            flops.append(backbone.flops(record))
            rates.append(record.per_sample_rates())
    expected_flops = flops[0] + flops[1]
    assert flops[0][0] != flops[0][1] or flops[0][0] != flops[1][0]  # content dependent
    for i, pred in enumerate(preds):
        assert pred.metainfo['dyt_flops'] == pytest.approx(float(expected_flops[i]))
        torch.testing.assert_close(pred.metainfo['dyt_rates'], (rates[0][i] + rates[1][i]) / 2)


def test_whole_flops_are_one_forward(dyt_model):
    dyt_model.test_cfg.mode = 'whole'
    inputs, _ = make_batch()
    with torch.no_grad():
        preds = dyt_model.predict(inputs)
        record = run(dyt_model.backbone, inputs)
    assert [p.metainfo['dyt_flops'] for p in preds] == \
        dyt_model.dyt_backbone.flops(record).tolist()
    assert preds[0].pred_sem_seg.data.shape == (1, 64, 96)


def test_dense_baseline_slide_flops_count_every_window():
    model = build_tiny(FULL_CONFIG).eval()
    inputs, _ = make_batch(batch_size=1)
    with torch.no_grad():
        pred = model.predict(inputs)[0]
        record = run(model.backbone, inputs[:, :, :, :64])
    assert 'dyt_rates' not in pred.metainfo
    assert pred.metainfo['dyt_flops'] == pytest.approx(
        2 * float(model.dyt_backbone.flops(record)[0]))


def test_non_dyt_backbone_is_rejected():
    from mmseg.registry import MODELS
    model = build_tiny()
    model.backbone = MODELS.build(dict(type='MixVisionTransformer', embed_dims=8,
                                       num_layers=[1, 1, 1, 1], num_heads=[1, 1, 1, 1]))
    with pytest.raises(TypeError, match='needs a DyTVisionTransformer backbone'):
        model.dyt_backbone


def test_tuned_only_checkpoint_reloads_to_identical_predictions(tmp_path):
    inputs, samples = make_batch()

    def build(seed):
        torch.manual_seed(seed)
        return build_tiny()

    def predict(model):
        return torch.stack([s.seg_logits.data for s in
                            model.predict(inputs, [s.clone() for s in samples])])

    assert_tuned_only_round_trip(build, predict, tmp_path)


def test_capacity_overflow_is_summed_over_the_windows(dyt_model):
    """Every token active, capacity 0.5: each window leaves out N - ceil(N / 2)
    patch-and-class tokens per dispatcher; an image sums its two windows."""
    import math
    dyt_model.test_cfg.mode = 'slide'
    backbone = dyt_model.dyt_backbone
    inputs, samples = make_batch()
    with torch.no_grad():
        for dispatcher in backbone.dispatchers():
            dispatcher.gate.bias.fill_(1e4)
        backbone.capacity, backbone.capacity_warning = 0.5, 1.0
        try:
            preds = dyt_model.predict(inputs, samples)
        finally:
            backbone.capacity = None
        dense = dyt_model.predict(inputs, [s.clone() for s in make_batch()[1]])
    tokens = 1 + (64 // 16) ** 2
    per_window = len(list(backbone.dispatchers())) * (tokens - math.ceil(0.5 * tokens))
    assert [p.metainfo['dyt_overflow'] for p in preds] == [2 * per_window] * 2
    assert 'dyt_overflow' not in dense[0].metainfo
