"""Dense FLOPs of the foundation families at 224 px, from the FLOPs home,
against an independent count: mmengine's fvcore-style FlopAnalyzer on timm's
model of the same family (attention run unfused, so that its matmuls are
seen). LayerScale's multiplies, which fvcore does not count, are the only
difference allowed (DINOv2: 0.02 %)."""
import pytest
import torch
from mmengine.analysis import FlopAnalyzer

from mmdyt.models.backbones import DyTVisionTransformer
from mmdyt.models.record import ForwardRecord

timm = pytest.importorskip('timm')

FAMILIES = {
    'vit_base_patch14_dinov2': dict(patch_size=14, layer_scale_init_value=1e-5),
    'vit_base_patch16_clip_224': dict(pre_norm=True, norm_eps=1e-5),
    'eva02_base_patch14_224': dict(
        arch=dict(embed_dims=768, num_layers=12, num_heads=12, feedforward_channels=2048),
        patch_size=14, mlp='swiglu', mlp_norm=True, rope=True, rope_ref_grid=(16, 16),
        out_type='avg_featmap', final_norm=False, pool_norm=True),
}


def independent_count(name, x):
    reference = timm.create_model(name, pretrained=False, img_size=224, num_classes=0).eval()
    for block in reference.blocks:
        block.attn.fused_attn = False
    analyzer = FlopAnalyzer(reference, (x, ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return analyzer.total()


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_dense_flops_at_224_agree_with_fvcore_on_timm(name):
    x = torch.randn(1, 3, 224, 224)
    settings = dict(dict(arch='b'), **FAMILIES[name])
    model = DyTVisionTransformer(img_size=224, dispatch=None, adapter_dim=None, **settings).eval()
    record = ForwardRecord()
    with torch.no_grad():
        model(x, record=record)
    ours = model.flops(record).item()
    assert ours == pytest.approx(independent_count(name, x), rel=0.005)
    assert record.num_tokens == (197 if 'clip' in name else 257)
