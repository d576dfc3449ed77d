"""Issue 15 ("nothing lost, nothing silent"), the model side: each test is
named after the item it guards."""
import copy
import re
import warnings

import pytest
import torch

from mmdyt.models.backbones import DyTVisionTransformer
from mmdyt.models.record import ForwardRecord

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


def randomize_trainable(model, seed=3):
    gen = torch.Generator().manual_seed(seed)
    for param in model.parameters():
        if param.requires_grad:
            param.data.copy_(torch.randn(param.shape, generator=gen) * 0.05)


@pytest.mark.parametrize('drop', ['backbone.blocks.1.adapters.mlp.up.weight', 'head.fc.bias'])
def test_item02_missing_trainable_weights_are_an_error(tmp_path, drop):
    from mmengine.runner.checkpoint import load_checkpoint
    path = str(tmp_path / 'full.pth')
    checkpoint = dict(meta={}, state_dict=classifier().state_dict())
    del checkpoint['state_dict'][drop]
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=rf"lacks 1 trainable weights of the model, e\.g\. "
                       rf"\['{re.escape(drop)}'\]"):
        load_checkpoint(classifier(), path, strict=False)
    checkpoint['state_dict'][drop] = torch.zeros(1)
    checkpoint['state_dict']['backbone.blocks.1.adapters.attn.up.weight'] = torch.zeros(1)
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=r"has 1 keys the model does not have, e\.g\. "
                       r"\['backbone\.blocks\.1\.adapters\.attn\.up\.weight'\]"):
        load_checkpoint(classifier(), path, strict=False)


def test_item03_replaced_base_checkpoint_is_refused(tmp_path):
    torch.manual_seed(0)
    base = tmp_path / 'base.pth'
    torch.save(tiny_vit(dispatch=None, adapter_dim=None).state_dict(), base)
    model = classifier(backbone=dict(pretrained=str(base)))
    model.init_weights()
    randomize_trainable(model)
    state = model.state_dict()
    copy_of_base = tmp_path / 'copy.pth'
    copy_of_base.write_bytes(base.read_bytes())

    fresh = classifier(backbone=dict(pretrained=str(copy_of_base)))
    fresh.load_state_dict(state)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x, mode='tensor'), model(x, mode='tensor'))

    torch.save(tiny_vit(dispatch=None, adapter_dim=None).state_dict(), base)
    with pytest.raises(ValueError, match=rf'the base weights in {base} differ .*recorded base: '
                       rf'{base};'):
        classifier().load_state_dict(state)
    with pytest.raises(ValueError, match=rf'the base weights in {base} differ'):
        classifier(backbone=dict(pretrained=str(base))).load_state_dict(state)


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
def test_item10_autocast_every_variant_and_moe(variant, num_experts, dtype):
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
def test_item05_nan_inf_input_paths_agree(variant, bad):
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
    (dict(out_indices=[2, -1]), r'out_indices \[2, -1\] name a block twice \(blocks \[2, 2\]\)'),
    (dict(arch=dict(TINY, num_heads=5)), 'num_heads=5 does not divide embed_dims=48'),
    (dict(drop_path_rate=1.0), r'drop_path_rate must be in \[0, 1\), got 1.0'),
])
def test_item06_settings_are_checked_at_build_time(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_vit(**kwargs)


def test_item06_input_not_a_patch_multiple_is_padded():
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
def test_item11_empty_batch(variant, out_type, shape):
    model = tiny_vit(dispatch=variant, out_type=out_type)
    for train in (True, False):
        model.train(train)
        record = ForwardRecord()
        out = model(torch.zeros(0, 3, 32, 32), record=record)[0]
        assert out.shape == shape
        assert model.flops(record).shape == (0, )


def test_item11_deepcopy_after_train_forward():
    model = classifier()
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


def test_item07_plain_toolbox_model_warns_about_the_rate_loss():
    from mmdyt.models.backbones import base
    base._WARNED.clear()
    cfg = dict(type='ImageClassifier',
               backbone=dict(type='DyTVisionTransformer', arch=TINY, img_size=32, patch_size=8,
                             adapter_dim=8),
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
        classifier(rate_loss=dict(type='ActivationRateLoss', target_rate=0.5)).train()(
            torch.randn(1, 3, 32, 32), samples, mode='loss')
    base._WARNED.clear()
