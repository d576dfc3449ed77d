"""The EVA-02-B/14 VTAB-1K configs: the family's settings (SwiGLU with sub-LN,
rotary positions on the 16 x 16 pretraining grid, the pooled norm, CLIP
normalisation, the timm release), built shrunk through mmpretrain's registry,
a loss and a prediction from raw images; with a random timm EVA-02 written
as the release's weights, the built backbone equals timm's model."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmdyt  # noqa: F401
from mmdyt.models.backbones import load_vit_checkpoint
from mmdyt.models.layers import SwiGLU, all_tokens_active

pytest.importorskip('mmpretrain')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {'configs/cls/dyt/dyt-r0.5-d8_eva02-b14_vtab1k.py': 'dyt',
           'configs/cls/linear/linear_eva02-b14_vtab1k.py': 'linear'}
TINY = dict(embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=128)


def build(path):
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, path))
    cfg.model.backbone.update(arch=TINY, img_size=56, pretrained=None, rope_ref_grid=(4, 4))
    cfg.model.head.in_channels = 48
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg.model)


@pytest.mark.parametrize('path', sorted(CONFIGS))
def test_config_has_the_family_settings_and_runs_shrunk(path):
    cfg = Config.fromfile(osp.join(ROOT, path))
    backbone = cfg.model.backbone
    assert backbone.pretrained == 'hf-hub:timm/eva02_base_patch14_224.mim_in22k'
    assert (backbone.patch_size, backbone.mlp, backbone.mlp_norm, backbone.rope) == (
        14, 'swiglu', True, True)
    assert tuple(backbone.rope_ref_grid) == (16, 16) and backbone.pool_norm
    assert backbone.arch.feedforward_channels == 2048
    assert cfg.model.data_preprocessor.mean == [122.770938, 116.7460125, 104.09373615]
    assert (cfg.model.get('rate_loss') is not None) == (CONFIGS[path] == 'dyt')
    model = build(path)
    assert all(isinstance(block.mlp, SwiGLU) for block in model.backbone.blocks)
    from mmpretrain.structures import DataSample
    images = torch.randint(0, 256, (2, 3, 56, 56), dtype=torch.uint8)
    data = model.data_preprocessor(dict(inputs=list(images), data_samples=[
        DataSample().set_gt_label(i) for i in (3, 7)]), True)
    losses = model(**data, mode='loss')
    assert ('loss_rate' in losses) == (CONFIGS[path] == 'dyt')
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(dict(inputs=list(images)), False),
                      mode='predict')
    assert preds[0].pred_score.shape == (100, )


def test_the_timm_release_layout_loads_to_timm_outputs():
    timm = pytest.importorskip('timm')
    torch.manual_seed(0)
    reference = timm.create_model('eva02_base_patch14_224', pretrained=False, img_size=56,
                                  embed_dim=48, depth=2, num_heads=3, num_classes=0,
                                  ref_feat_shape=(4, 4)).eval()
    with torch.no_grad():
        for param in reference.parameters():
            param.normal_(std=0.2)
    backbone = build('configs/cls/dyt/dyt-r0.5-d8_eva02-b14_vtab1k.py').backbone.eval()
    load_vit_checkpoint(backbone, reference.state_dict())
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad(), all_tokens_active(backbone.dispatchers()):
        torch.testing.assert_close(backbone(x)[0], reference(x), atol=1e-5, rtol=1e-5)
