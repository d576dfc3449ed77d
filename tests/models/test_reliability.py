"""Issue 15 ("nothing lost, nothing silent"), the model side: each test is
named after the item it guards."""
import copy

import pytest
import torch

from mmdyt.models.backbones import DyTVisionTransformer

pytest.importorskip('mmpretrain')

from mmengine.config import ConfigDict  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402
from mmpretrain.models import VisionTransformer  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402

TINY = dict(embed_dims=48, num_layers=3, num_heads=3, feedforward_channels=96)


def tiny_vit(**kwargs):
    kwargs.setdefault('arch', TINY)
    kwargs.setdefault('img_size', 32)
    kwargs.setdefault('patch_size', 8)
    kwargs.setdefault('adapter_dim', 8)
    return DyTVisionTransformer(**kwargs)


def classifier(backbone=None, **kwargs):
    cfg = dict(type='DyTImageClassifier',
               backbone=dict(type='DyTVisionTransformer', arch=TINY, img_size=32,
                             patch_size=8, adapter_dim=8, **(backbone or {})),
               head=dict(type='LinearClsHead', num_classes=5, in_channels=48), **kwargs)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


@pytest.fixture
def mmpretrain_classifier_file(tmp_path):
    """An mmpretrain ImageClassifier checkpoint (``backbone.layers.*``,
    ``head.*``) and its ViT, in eval mode."""
    torch.manual_seed(0)
    vit = VisionTransformer(arch=TINY, img_size=32, patch_size=8)
    vit.eval()
    for param in vit.parameters():
        param.data.normal_(0, 0.1)
    state = {f'backbone.{k}': v for k, v in vit.state_dict().items()}
    state.update({'head.fc.weight': torch.randn(5, 48), 'head.fc.bias': torch.zeros(5)})
    path = tmp_path / 'mmpretrain_vit.pth'
    torch.save(dict(meta={}, state_dict=state), path)
    return str(path), vit


def dense_output(model, vit):
    """Output of ``model`` (gates off, adapters zero) vs the source ViT's
    class token: their largest difference."""
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        return (model(x)[0] - vit(x)[0]).abs().max().item()


@pytest.mark.parametrize('prefix', [None, 'backbone.'])
def test_item01_init_cfg_pretrained_maps_keys(mmpretrain_classifier_file, prefix):
    path, vit = mmpretrain_classifier_file
    init_cfg = dict(type='Pretrained', checkpoint=path)
    if prefix:
        init_cfg['prefix'] = prefix
    model = tiny_vit(dispatch=None, init_cfg=init_cfg)
    model.init_weights()
    assert model.pretrained == path
    assert dense_output(model, vit) < 1e-4


def test_item01_model_level_pretrained_maps_keys(mmpretrain_classifier_file):
    """mmpretrain's ``ImageClassifier(pretrained=...)`` (a model-level
    Pretrained init_cfg) and mmseg's segmentor ``pretrained`` reach the
    backbone's key mapping."""
    path, vit = mmpretrain_classifier_file
    model = classifier(backbone=dict(dispatch=None), pretrained=path)
    model.init_weights()
    assert model.backbone.pretrained == path
    assert dense_output(model.backbone, vit) < 1e-4
    pytest.importorskip('mmseg')
    from mmseg.models import EncoderDecoder
    import mmdyt.models.segmentors  # noqa: F401
    from mmseg.registry import MODELS as SEG_MODELS
    cfg = ConfigDict(type='DyTEncoderDecoder', pretrained=path,
               backbone=dict(type='DyTVisionTransformer', arch=TINY, img_size=32, patch_size=8,
                             adapter_dim=8, dispatch=None, out_type='featmap'),
               decode_head=dict(type='FCNHead', in_channels=48, channels=8, num_convs=1,
                                num_classes=3))
    with DefaultScope.overwrite_default_scope('mmseg'):
        segmentor = SEG_MODELS.build(cfg)
    assert isinstance(segmentor, EncoderDecoder)
    segmentor.init_weights()
    torch.testing.assert_close(segmentor.backbone.blocks[2].mlp.fc2.weight,
                               vit.layers[2].ffn.layers[1].weight)
    torch.testing.assert_close(segmentor.backbone.pos_embed, vit.pos_embed)


def test_item01_unmatched_vit_key_is_an_error(mmpretrain_classifier_file, tmp_path):
    path, _ = mmpretrain_classifier_file
    state = torch.load(path, weights_only=True)['state_dict']
    state['backbone.layers.0.gamma1'] = torch.ones(48)
    other = tmp_path / 'layer_scale.pth'
    torch.save(state, other)
    model = tiny_vit(init_cfg=dict(type='Pretrained', checkpoint=str(other), prefix='backbone.'))
    with pytest.raises(ValueError, match=r"1 ViT weights this backbone has no place for, e\.g\. "
                       r"\['layers\.0\.gamma1'\]"):
        model.init_weights()
    with pytest.raises(ValueError, match='no keys with the prefix'):
        tiny_vit(init_cfg=dict(type='Pretrained', checkpoint=path, prefix='encoder.')
                 ).init_weights()
    with pytest.raises(ValueError, match='not both'):
        tiny_vit(pretrained=path, init_cfg=dict(type='Pretrained', checkpoint=path))
