"""The ONNX export of DyT-Swin keeps the skipping: the window attention runs
as one 4-D batch of windows (the exporters refuse 5-D attention), and the
shifted-window mask built while tracing does not leak into the eager cache."""
import pytest
import torch

from mmdyt.deploy.onnx import check_onnx, export_onnx
from mmdyt.models.backbones import DyTSwinTransformer

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')


def test_swin_export_keeps_skipping(tmp_path):
    torch.manual_seed(0)
    model = DyTSwinTransformer(arch=dict(embed_dims=16, depths=[2, 2], num_heads=[1, 2]),
                               window_size=2, out_indices=(1, ), img_size=32,
                               adapter_dim=8).eval()
    with torch.no_grad():
        for dispatcher in model.dispatchers():
            dispatcher.gate.weight.normal_(std=0.5)
    report = export_onnx(model, tmp_path / 'swin.onnx', torch.randn(2, 3, 32, 32))
    assert report.mode == 'skipping'
    results = check_onnx(model, report.path, (3, 32, 32), batch_sizes=(1, 3))
    rates = {r.pattern: r.rate for r in results}
    assert rates['all off'] == 0.0 and rates['all on'] == 1.0
    assert all(r.max_abs_diff < 1e-5 for r in results)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))[0]
    assert type(out) is torch.Tensor  # no traced tensor reused after the export
