"""The ONNX export keeps the skipping on the foundation families: DINOv2
with registers (never dispatched), SigLIP without a class token (a batch
may have no active token at all) and EVA-02 (rotary positions gathered per
packed token), checked in ONNX Runtime on activation patterns unseen at
export."""
import pytest
import torch

from mmdyt.deploy.onnx import check_onnx, export_onnx
from mmdyt.models.backbones import DyTVisionTransformer
from tiny_dyt import tiny_arch

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

ARCH = tiny_arch(num_layers=2)
FAMILIES = {
    'dinov2_reg4': dict(patch_size=14, img_size=56, num_registers=4,
                        layer_scale_init_value=1e-5),
    'siglip': dict(patch_size=16, img_size=64, class_token=False, out_type='map'),
    'eva02': dict(patch_size=14, img_size=56, mlp='swiglu', mlp_norm=True, rope=True,
                  rope_ref_grid=(4, 4), out_type='avg_featmap', final_norm=False, pool_norm=True),
}


@pytest.mark.parametrize('dispatch', ['mlp', 'attn_mlp'])
@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_export_keeps_skipping(tmp_path, family, dispatch):
    settings = FAMILIES[family]
    torch.manual_seed(0)
    model = DyTVisionTransformer(arch=ARCH, dispatch=dispatch, adapter_dim=8, **settings).eval()
    with torch.no_grad():
        for dispatcher in model.dispatchers():
            dispatcher.gate.weight.normal_(std=0.5)
    size = settings['img_size']
    report = export_onnx(model, tmp_path / f'{family}.onnx', torch.randn(2, 3, size, size))
    assert report.mode == 'skipping'
    results = check_onnx(model, report.path, (3, size, size), batch_sizes=(1, 5))
    rates = {r.pattern: r.rate for r in results}
    assert rates['all off'] == 0.0 and rates['all on'] == 1.0
    assert 0.0 < rates['half on'] < 1.0
    assert all(r.max_abs_diff < 1e-5 for r in results)
