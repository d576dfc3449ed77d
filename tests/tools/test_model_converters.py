import subprocess
import sys

import torch

from mmdyt.models.backbones import DyTVisionTransformer, load_vit_checkpoint


def test_converter_round_trip(tmp_path):
    from mmpretrain.models import VisionTransformer
    arch = dict(embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=96)
    source = VisionTransformer(arch=arch, img_size=32, patch_size=8)
    src = tmp_path / 'mmpretrain.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in source.state_dict().items()}}, src)
    dst = tmp_path / 'converted.pth'
    refused = subprocess.run(
        [sys.executable, 'tools/model_converters/vit_to_mmdyt.py', str(src), str(dst),
         '--arch', 't', '--patch-size', '8', '--img-size', '32'], capture_output=True, text=True)
    # arch 't' is wider than the checkpoint: the converter must refuse it.
    assert refused.returncode != 0 and 'does not fit the model' in refused.stderr
    assert not dst.exists()
    result = subprocess.run(
        [sys.executable, '-c',
         'import sys, runpy; from mmdyt.models.backbones import dyt_vit; '
         f'dyt_vit.ARCHS["t"] = {arch!r}; sys.argv = sys.argv[1:]; '
         'runpy.run_path("tools/model_converters/vit_to_mmdyt.py", run_name="__main__")',
         'x', str(src), str(dst), '--arch', 't', '--patch-size', '8', '--img-size', '32'],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    model = DyTVisionTransformer(arch=arch, img_size=32, patch_size=8)
    load_vit_checkpoint(model, str(dst))
    torch.testing.assert_close(model.blocks[1].mlp.fc2.weight,
                               source.layers[1].ffn.layers[1].weight)
