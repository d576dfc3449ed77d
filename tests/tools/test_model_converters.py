"""tools/model_converters/vit_to_mmdyt.py: what it writes is what the
configs read (``data/pretrained/vit-b16_in21k.npz`` by default), in the
format DST's extension names, and loads back to the source's weights."""
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmdyt.models.backbones import (DyTVisionTransformer, dyt_vit, load_vit_checkpoint,
                                    read_checkpoint)
import train_runs
from tiny_dyt import tiny_arch

ARCH = tiny_arch(2)


def mmpretrain_checkpoint(path):
    """A tiny mmpretrain ViT (2 blocks) saved as a whole-classifier
    checkpoint (``backbone.`` keys); returns the source model."""
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(0)
    source = VisionTransformer(arch=ARCH, img_size=32, patch_size=8)
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in source.state_dict().items()}},
               path)
    return source


@pytest.fixture
def converter(monkeypatch):
    """The converter module, its arch 't' made the tiny one."""
    monkeypatch.setitem(dyt_vit.ARCHS, 't', ARCH)
    return train_runs.load_tool('model_converters/vit_to_mmdyt')


def assert_loads_source(dst, source):
    model = DyTVisionTransformer(arch=ARCH, img_size=32, patch_size=8)
    load_vit_checkpoint(model, str(dst))
    torch.testing.assert_close(model.blocks[1].mlp.fc2.weight,
                               source.layers[1].ffn.layers[1].weight)
    torch.testing.assert_close(model.patch_embed.proj.weight,
                               source.patch_embed.projection.weight)


def test_converter_refuses_another_arch(tmp_path):
    src = tmp_path / 'mmpretrain.pth'
    mmpretrain_checkpoint(src)
    dst = tmp_path / 'converted.npz'
    refused = subprocess.run(
        [sys.executable, 'tools/model_converters/vit_to_mmdyt.py', str(src), str(dst),
         '--arch', 't', '--patch-size', '8', '--img-size', '32'], capture_output=True, text=True)
    # arch 't' is wider than the checkpoint: the converter must refuse it.
    assert refused.returncode != 0 and 'does not fit the model' in refused.stderr
    assert not dst.exists() and not os.path.exists(f'{dst}.tmp')


@pytest.mark.parametrize('name', ['converted.npz', 'converted.safetensors', 'converted.pth'])
def test_converter_writes_the_format_of_the_extension(tmp_path, converter, name, monkeypatch):
    if name.endswith('.safetensors'):
        pytest.importorskip('safetensors')
    src = tmp_path / 'mmpretrain.pth'
    source = mmpretrain_checkpoint(src)
    dst = tmp_path / name
    converter.main([str(src), str(dst), '--arch', 't', '--patch-size', '8', '--img-size', '32'])
    assert sorted(os.listdir(tmp_path)) == sorted(['mmpretrain.pth', name])
    if not name.endswith('.pth'):  # pickle-free formats: read without torch.load
        with monkeypatch.context() as patch:
            patch.setattr(torch, 'load', lambda *args, **kwargs: pytest.fail('torch.load'))
            state = read_checkpoint(dst)
        assert 'blocks.1.attn.qkv.weight' in state and 'meta' not in state
    assert_loads_source(dst, source)


def test_converter_default_output_is_what_the_configs_read(tmp_path, converter, monkeypatch):
    for config, arch in [('configs/cls/_base_/models/vit-b16_linear.py', 'b'),
                         ('configs/cls/_base_/models/vit-l16_linear.py', 'l')]:
        backbone = Config.fromfile(train_runs.ROOT / config).model.backbone
        assert converter.default_dst(arch, backbone.patch_size) == backbone.pretrained
    src = tmp_path / 'mmpretrain.pth'
    source = mmpretrain_checkpoint(src)
    monkeypatch.chdir(tmp_path)
    converter.main([str(src), '--arch', 't', '--patch-size', '8', '--img-size', '32'])
    assert_loads_source(tmp_path / 'data' / 'pretrained' / 'vit-t8_in21k.npz', source)


@pytest.mark.parametrize('dst, message', [
    ('converted.bin', 'must end with one of .npz, .safetensors, .pth, .pt'),
    ('mmpretrain.pth', 'is the source file'),
])
def test_converter_refuses_bad_destinations(tmp_path, converter, dst, message, capsys):
    src = tmp_path / 'mmpretrain.pth'
    mmpretrain_checkpoint(src)
    with pytest.raises(SystemExit):
        converter.main([str(src), str(tmp_path / dst), '--arch', 't'])
    assert message in capsys.readouterr().err
