"""Whole-model FLOPs of the segmentor (``mmdyt.analysis.measure_flops``):
the parts add up and the backbone follows the skipping; the dense UperNet +
ViT-B/16 at 512 x 512 against DyT Table 6 (605.36 G)."""
import pytest
import torch

from mmdyt.analysis import forced_activation_rate, measure_flops
from .tiny import FULL_CONFIG, build_tiny

PAPER_DENSE_GFLOPS = 605.36


def conv_flops(in_channels, out_channels, kernel, pixels):
    return in_channels * out_channels * kernel * kernel * pixels


def resize_flops(channels, size):
    """The bilinear resize of ``channels`` logit maps to ``size`` x ``size``
    (4 per output pixel) that prediction applies after the decode head's
    tensor output."""
    return 4 * channels * size * size


def test_tiny_parts_add_up_and_backbone_follows_skipping():
    torch.manual_seed(0)
    model = build_tiny()
    image = torch.randn(1, 3, 64, 64)
    flops = measure_flops(model, image)
    parts = flops['breakdown']
    assert flops['total'] == flops['backbone'] + flops['rest']
    assert flops['backbone'] == sum(v for k, v in parts.items() if k.startswith('backbone.'))
    # the rest is the neck and the decode head (with its resizes, which the
    # count does not attribute to the head module); no auxiliary head (training only)
    assert 'auxiliary_head' not in parts
    assert parts['neck'] + parts['decode_head'] <= flops['rest']
    # neck on a 4 x 4 grid of 48 channels: deconvs to 8x8 and 16x16 (twice
    # for stride 4, once for stride 8), BN on the 8 x 8 map
    deconv = (conv_flops(48, 48, 2, 16) + conv_flops(48, 48, 2, 64) + conv_flops(48, 48, 2, 16))
    assert parts['neck'] == pytest.approx(deconv, rel=0.02)
    with forced_activation_rate(model.dyt_backbone, 1.0, image) as rates:
        assert torch.equal(rates, torch.ones_like(rates))  # every token active
        all_active = measure_flops(model, image)
    assert flops['backbone'] < all_active['backbone']
    assert flops['rest'] == all_active['rest']
    assert measure_flops(model, image)['backbone'] == flops['backbone']  # gates restored


def test_dense_vit_b16_upernet_matches_paper():
    """The one full-size count (about a minute on CPU)."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    cfg = Config.fromfile(FULL_CONFIG)
    cfg.model.backbone.pretrained = None
    for part in ('neck', 'decode_head', 'auxiliary_head'):
        cfg.model[part].norm_cfg = dict(type='BN', requires_grad=True)
    flops = measure_flops(MODELS.build(cfg.model), torch.zeros(1, 3, 512, 512))
    neck = flops['breakdown']['neck']
    # the decode head: the rest after the neck, and the final resize to 512 x 512
    decode_head = flops['rest'] - neck + resize_flops(150, 512)
    # ViT-B/16 on 1025 tokens: 12 x (12 N C^2 + 2 N^2 C + LNs) + patch embed
    assert flops['backbone'] / 1e9 == pytest.approx(107.12, abs=0.01)
    assert neck / 1e9 == pytest.approx(14.50, abs=0.01)
    assert decode_head / 1e9 == pytest.approx(483.91, abs=0.01)
    total = flops['backbone'] + neck + decode_head
    assert total / 1e9 == pytest.approx(PAPER_DENSE_GFLOPS, rel=0.03)
