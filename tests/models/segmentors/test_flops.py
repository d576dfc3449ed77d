"""Part-by-part FLOPs of the segmentor; the dense UperNet + ViT-B/16 at
512 x 512 against DyT Table 6 (605.36 G)."""
import pytest
import torch

from mmdyt.models.segmentors import segmentor_flops

from .tiny import FULL_CONFIG, build_tiny

PAPER_DENSE_GFLOPS = 605.36


def conv_flops(in_channels, out_channels, kernel, pixels):
    return in_channels * out_channels * kernel * kernel * pixels


def test_tiny_parts_add_up_and_backbone_follows_skipping():
    torch.manual_seed(0)
    model = build_tiny()
    image = torch.randn(1, 3, 64, 64)
    flops = segmentor_flops(model, (64, 64), image)
    assert model.training  # mode restored
    assert flops['total'] == flops['backbone'] + flops['neck'] + flops['decode_head']
    # neck on a 4 x 4 grid of 48 channels: deconvs to 8x8 and 16x16 (twice
    # for stride 4, once for stride 8), BN on the 8 x 8 map
    deconv = (conv_flops(48, 48, 2, 16) + conv_flops(48, 48, 2, 64) + conv_flops(48, 48, 2, 16))
    assert flops['neck'] == pytest.approx(deconv, rel=0.02)
    # FCN auxiliary head: 3x3 conv 48 -> 8 and 1x1 classifier on the 4 x 4
    # map, then the bilinear resize of 150 logit maps to 64 x 64 (4 per pixel)
    aux = conv_flops(48, 8, 3, 16) + conv_flops(8, 150, 1, 16) + 4 * 150 * 64 * 64
    assert flops['auxiliary_head'] == pytest.approx(aux, rel=0.05)
    for dispatcher in model.dyt_backbone.dispatchers():
        dispatcher.gate.bias.data.fill_(1e4)  # every token active
    all_active = segmentor_flops(model, (64, 64), image)
    assert flops['backbone'] < all_active['backbone']
    assert flops['decode_head'] == all_active['decode_head']

def test_dense_vit_b16_upernet_matches_paper():
    """The one full-size count (about a minute on CPU)."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    cfg = Config.fromfile(FULL_CONFIG)
    cfg.model.backbone.pretrained = None
    for part in ('neck', 'decode_head', 'auxiliary_head'):
        cfg.model[part].norm_cfg = dict(type='BN', requires_grad=True)
    flops = segmentor_flops(MODELS.build(cfg.model), (512, 512))
    gflops = {k: v / 1e9 for k, v in flops.items()}
    # ViT-B/16 on 1025 tokens: 12 x (12 N C^2 + 2 N^2 C + LNs) + patch embed
    assert gflops['backbone'] == pytest.approx(107.12, abs=0.01)
    assert gflops['neck'] == pytest.approx(14.50, abs=0.01)
    assert gflops['decode_head'] == pytest.approx(483.91, abs=0.01)
    assert gflops['total'] == pytest.approx(PAPER_DENSE_GFLOPS, rel=0.03)
