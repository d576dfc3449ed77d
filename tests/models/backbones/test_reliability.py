"""DyTVisionTransformer loses nothing silently: pretrained weights land where
they belong or loading names the key; bad settings fail at build time;
autocast and NaN / inf inputs give the masked path's result on the skipping
path; odd input sizes are padded; empty batches, deep copies work; a toolbox
model without a rate loss is warned about."""
import copy
import warnings
from functools import partial

import pytest
import torch

from mmdyt.models.record import ForwardRecord
import tiny_dyt
from tiny_dyt import tiny_arch, tiny_classifier, tiny_vit_cfg

pytest.importorskip('mmpretrain')

from mmengine.config import ConfigDict  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402
from mmpretrain.models import VisionTransformer  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402

#: The tiny ViT (C=48, 3 heads) with three blocks and adapters of 8.
TINY = tiny_arch(num_layers=3)
tiny_vit = partial(tiny_dyt.tiny_vit, num_layers=3, adapter_dim=8)


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
def test_init_cfg_pretrained_maps_mmpretrain_keys(mmpretrain_classifier_file, prefix):
    path, vit = mmpretrain_classifier_file
    init_cfg = dict(type='Pretrained', checkpoint=path)
    if prefix:
        init_cfg['prefix'] = prefix
    model = tiny_vit(dispatch=None, init_cfg=init_cfg)
    model.init_weights()
    assert model.pretrained == path
    assert dense_output(model, vit) < 1e-4


def test_model_level_pretrained_reaches_the_key_mapping(mmpretrain_classifier_file):
    """mmpretrain's ``ImageClassifier(pretrained=...)`` (a model-level
    Pretrained init_cfg) and mmseg's segmentor ``pretrained`` reach the
    backbone's key mapping."""
    path, vit = mmpretrain_classifier_file
    model = tiny_classifier(backbone=dict(dispatch=None), pretrained=path)
    model.init_weights()
    assert model.backbone.pretrained == path
    assert dense_output(model.backbone, vit) < 1e-4
    pytest.importorskip('mmseg')
    from mmseg.models import EncoderDecoder
    from mmseg.registry import MODELS as SEG_MODELS

    import mmdyt.models.segmentors  # noqa: F401
    cfg = ConfigDict(type='DyTEncoderDecoder', pretrained=path,
                     backbone=tiny_vit_cfg(num_layers=3, adapter_dim=8, dispatch=None,
                                           out_type='featmap'),
                     decode_head=dict(type='FCNHead', in_channels=48, channels=8, num_convs=1,
                                      num_classes=3))
    with DefaultScope.overwrite_default_scope('mmseg'):
        segmentor = SEG_MODELS.build(cfg)
    assert isinstance(segmentor, EncoderDecoder)
    segmentor.init_weights()
    torch.testing.assert_close(segmentor.backbone.blocks[2].mlp.fc2.weight,
                               vit.layers[2].ffn.layers[1].weight)
    torch.testing.assert_close(segmentor.backbone.pos_embed, vit.pos_embed)


def test_pretrained_with_unplaced_keys_or_bad_prefix_fails(mmpretrain_classifier_file, tmp_path):
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


def force_half_active(model):
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if 'adapters' in name or 'dispatchers' in name:
            param.data.normal_(0, 0.3)


def both_paths(model, x):
    """(masked, skipping) outputs of ``model`` in eval mode."""
    with torch.no_grad():
        model.skip_inactive = False
        masked = model(x)[0].float()
        model.skip_inactive = True
        return masked, model(x)[0].float()


AUTOCAST_TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 0.1, torch.float16: 1e-2}


@pytest.mark.parametrize('dtype', list(AUTOCAST_TOLERANCE))
@pytest.mark.parametrize('num_experts', [1, 4])
@pytest.mark.parametrize('variant', ['mlp', 'attn', 'attn_mlp', 'layer'])
def test_autocast_skipping_path_matches_masked_path(variant, num_experts, dtype):
    torch.manual_seed(0)
    model = tiny_vit(dispatch=variant, num_experts=num_experts, out_type='raw').eval()
    force_half_active(model)
    x = torch.randn(3, 3, 32, 32)
    with torch.autocast('cpu', dtype=dtype, enabled=dtype != torch.float32):
        masked, skipping = both_paths(model, x)
    assert torch.isfinite(skipping).all()
    scale = masked.abs().max()
    assert (masked - skipping).abs().max() <= AUTOCAST_TOLERANCE[dtype] * scale


@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
@pytest.mark.parametrize('variant', ['mlp', 'attn', 'attn_mlp', 'layer'])
def test_nan_inf_input_stays_in_its_sample_on_both_paths(variant, bad):
    torch.manual_seed(0)
    model = tiny_vit(dispatch=variant, out_type='raw').eval()
    force_half_active(model)
    x = torch.randn(3, 3, 32, 32)
    x[1, :, 5, 20] = bad
    masked, skipping = both_paths(model, x)
    assert not torch.isfinite(masked[1]).all() and torch.isfinite(masked[[0, 2]]).all()
    torch.testing.assert_close(skipping, masked, equal_nan=True, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('kwargs, message', [
    (dict(out_indices=[0, 3]), r'out_indices \[3\] outside \[-3, 3\) for 3 blocks'),
    (dict(out_indices=[-4]), r'out_indices \[-4\] outside'),
    (dict(out_indices=[2, -1]),
     r'out_indices \[2, -1\] name one of the blocks twice \(blocks \[2, 2\]\)'),
    (dict(arch=tiny_arch(num_layers=3, num_heads=5)), 'num_heads=5 does not divide embed_dims=48'),
    (dict(drop_path_rate=1.0), r'drop_path_rate must be in \[0, 1\), got 1.0'),
])
def test_bad_settings_are_refused_at_build_time(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_vit(**kwargs)


def test_input_not_a_patch_multiple_is_zero_padded():
    model = tiny_vit(out_type='featmap').eval()
    x = torch.randn(2, 3, 35, 30)
    padded = torch.zeros(2, 3, 40, 32)
    padded[:, :, :35, :30] = x
    record = ForwardRecord()
    with torch.no_grad():
        out = model(x, record=record)[0]
        torch.testing.assert_close(out, model(padded)[0])
    assert out.shape == (2, 48, 5, 4) and record.grid == (5, 4)


@pytest.mark.parametrize('out_type, shape', [('cls_token', (0, 48)), ('featmap', (0, 48, 4, 4)),
                                             ('avg_featmap', (0, 48)), ('raw', (0, 16, 48))])
@pytest.mark.parametrize('variant', ['mlp', 'attn', 'layer'])
def test_empty_batch_gives_empty_outputs_and_flops(variant, out_type, shape):
    model = tiny_vit(dispatch=variant, out_type=out_type)
    for train in (True, False):
        model.train(train)
        record = ForwardRecord()
        out = model(torch.zeros(0, 3, 32, 32), record=record)[0]
        assert out.shape == shape
        assert model.flops(record).shape == (0, )


def test_deepcopy_after_a_training_step_predicts_the_same():
    model = tiny_classifier()
    model.train()
    inputs = torch.randn(2, 3, 32, 32)
    from mmpretrain.structures import DataSample
    losses = model(inputs, [DataSample().set_gt_label(i) for i in range(2)], mode='loss')
    sum(losses.values()).backward()
    copied = copy.deepcopy(model)
    copied.eval()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(copied(inputs, mode='tensor'), model(inputs, mode='tensor'))


def test_toolbox_classifier_without_rate_loss_warns_once():
    from mmdyt.models.backbones import base
    base._WARNED.clear()
    cfg = dict(type='ImageClassifier', backbone=tiny_vit_cfg(num_layers=3, adapter_dim=8),
               head=dict(type='LinearClsHead', num_classes=5, in_channels=48))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        plain = MODELS.build(cfg)
    from mmpretrain.structures import DataSample
    samples = [DataSample().set_gt_label(0)]
    with pytest.warns(UserWarning, match=r"DyTVisionTransformer with token dispatchers .* no "
                      r"rate loss .* DyTImageClassifier .* rate_loss=dict\(type='Activation"):
        plain(torch.randn(1, 3, 32, 32), samples, mode='loss')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        plain(torch.randn(1, 3, 32, 32), samples, mode='loss')
        base._WARNED.clear()
        tiny_classifier(rate_loss=dict(type='ActivationRateLoss', target_rate=0.5)).train()(
            torch.randn(1, 3, 32, 32), samples, mode='loss')
    base._WARNED.clear()
