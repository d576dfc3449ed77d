"""DyTEncoderDecoder + UperNet on DyT-Swin (the Swin-B config in tiny form):
skipping == masked logits in whole and slide mode, per-image FLOPs from the
records of the backbone forwards."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdyt.analysis import forced_activation_rate
from mmdyt.models.backbones import DyTSwinTransformer
from mmdyt.models.record import ForwardRecord
from .test_encoder_decoder import make_batch

CONFIG = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', 'seg', 'dyt',
                  'dyt-r0.5_swin-b_upernet_ade20k-512x512.py')
BN = dict(type='BN', requires_grad=True)


@pytest.fixture(scope='module')
def model():
    """The config's segmentor with an 8-wide 4-stage Swin on 64x64 crops."""
    from mmseg.registry import MODELS
    cfg = Config.fromfile(CONFIG).model
    cfg.backbone.update(arch=dict(embed_dims=8, depths=[2, 2, 2, 2], num_heads=[1, 1, 2, 2]),
                        window_size=3, pretrained=None, drop_path_rate=0.0)
    cfg.decode_head.update(in_channels=[8, 16, 32, 64], channels=8, norm_cfg=BN)
    cfg.auxiliary_head.update(in_channels=32, channels=8, norm_cfg=BN)
    cfg.data_preprocessor.size = (64, 64)
    cfg.test_cfg = dict(mode='whole', crop_size=(64, 64), stride=(43, 43))
    init_default_scope('mmseg')
    torch.manual_seed(0)
    segmentor = MODELS.build(cfg)
    segmentor.eval()
    backbone = segmentor.dyt_backbone
    for block in backbone.blocks:
        torch.nn.init.normal_(block.adapters['mlp'].up.weight, std=0.1)
    return segmentor


@torch.no_grad()
def randomize_gates(backbone):
    """Random gate weights (seeded), for patterns that differ from token to
    token."""
    torch.manual_seed(1)
    for dispatcher in backbone.dispatchers():
        torch.nn.init.normal_(dispatcher.gate.weight, std=0.5)


@pytest.mark.parametrize('mode, rate', [('whole', 0.0), ('whole', 0.5), ('slide', 0.5),
                                        ('slide', 1.0)])
def test_skipping_equals_masked_logits(model, mode, rate):
    backbone = model.dyt_backbone
    assert isinstance(backbone, DyTSwinTransformer)
    model.test_cfg.mode = mode
    inputs, samples = make_batch(batch_size=2, height=64, width=96)
    randomize_gates(backbone)
    with torch.no_grad(), forced_activation_rate(backbone, rate, inputs[:, :, :, :64]):
        backbone.skip_inactive = True
        skipped = model.predict(inputs, [s.clone() for s in samples])
        backbone.skip_inactive = False
        masked = model.predict(inputs, [s.clone() for s in samples])
    backbone.skip_inactive = True
    rates = torch.stack([s.metainfo['dyt_rates'] for s in skipped])
    if rate in (0.0, 1.0):
        assert torch.all(rates == rate)
    else:
        assert 0.2 < rates.mean() < 0.8
    for a, b in zip(skipped, masked):
        assert a.seg_logits.data.shape == (150, 64, 96)
        torch.testing.assert_close(a.seg_logits.data, b.seg_logits.data, atol=1e-4, rtol=0)
        assert a.metainfo['dyt_flops'] == b.metainfo['dyt_flops']


def test_whole_and_slide_flops_come_from_the_records(model):
    backbone = model.dyt_backbone
    inputs, _ = make_batch(batch_size=1, height=64, width=96)
    randomize_gates(backbone)
    with torch.no_grad(), forced_activation_rate(backbone, 0.5, inputs[:, :, :, :64]):
        model.test_cfg.mode = 'whole'
        whole = model.predict(inputs)[0].metainfo['dyt_flops']
        model.test_cfg.mode = 'slide'
        slide = model.predict(inputs)[0].metainfo['dyt_flops']
        records = [ForwardRecord() for _ in range(3)]
        backbone(inputs, record=records[0])
        for record, x1 in zip(records[1:], (0, 32)):  # 64 x 64 crops at stride 43
            backbone(inputs[:, :, :, x1:x1 + 64], record=record)
    assert whole == float(backbone.flops(records[0])[0])
    assert slide == pytest.approx(float(backbone.flops(records[1])[0] +
                                        backbone.flops(records[2])[0]))
