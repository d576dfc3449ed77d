"""mmdyt.config_conversion.dyt_config on the toolboxes' shipped configs:
what is carried, dropped, refused and warned about (the training runs of
converted configs are in tests/tools/test_dyt_config.py)."""
import importlib.util
import warnings
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmdyt.config_conversion import (IMAGENET_NORM, IN21K_NORM, DyTConfigWarning,
                                     checkpoint_normalisation, dyt_config)

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(embed_dims=48, num_layers=4, num_heads=3, feedforward_channels=96)


def shipped(package, rel):
    spec = importlib.util.find_spec(package)
    return Config.fromfile(str(Path(list(spec.submodule_search_locations)[0]) / '.mim' /
                               'configs' / rel))


def quiet(cfg, **kwargs):
    """dyt_config with its warnings recorded; (config, changes, warnings)."""
    changes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        new = dyt_config(cfg, changes=changes, **kwargs)
    return new, changes, [str(w.message) for w in caught if w.category is DyTConfigWarning]


MLN = ('mmseg', 'vit/vit_vit-b16_mln_upernet_8xb2-80k_ade20k-512x512.py')
CLS = ('mmpretrain', 'vision_transformer/vit-base-p16_64xb64_in1k.py')


def test_mmseg_neck_gets_the_width_checkpoint_moves_and_norm_is_checked():
    cfg = shipped(*MLN)
    before = cfg.to_dict()
    new, changes, warned = quiet(cfg, arch=TINY, img_size=64)
    assert cfg.to_dict() == before  # the input is left alone
    model = new.model
    assert model.type == 'DyTEncoderDecoder'
    assert model.pretrained is None
    assert model.backbone.pretrained == 'pretrain/vit_base_patch16_224.pth'
    assert model.backbone.arch == TINY and model.backbone.out_indices == (2, 5, 8, 11)
    # the neck reads the backbone, the heads read the neck's 768 outputs
    assert model.neck.in_channels == [48] * 4 and model.neck.out_channels == 768
    assert model.decode_head.in_channels == [768] * 4
    assert 'model.neck.in_channels: [768, 768, 768, 768] -> [48, 48, 48, 48] (the backbone ' \
           'width)' in changes
    # timm's vit_base_patch16_224 is in21k-pretrained, normalised to [-1, 1]
    assert len(warned) == 1 and 'mean=[123.675, 116.28, 103.53]' in warned[0] and \
        'vit_base_patch16_224.pth' in warned[0] and 'mean=[127.5, 127.5, 127.5]' in warned[0]

    fixed, changes, warned = quiet(cfg, fix_norm=True)
    assert warned == []
    for pre in (fixed.model.data_preprocessor, fixed.data_preprocessor):
        assert pre.mean == IN21K_NORM['mean'] and pre.std == IN21K_NORM['std']


@pytest.mark.parametrize('neck, neck_key', [
    (None, None),
    (dict(type='Feature2Pyramid', embed_dim=768, rescales=[4, 2, 1, 0.5]), 'embed_dim')])
def test_without_a_resizing_neck_the_heads_get_the_width(neck, neck_key):
    """No neck (mmseg's DeiT UperNet) or one that keeps the width
    (Feature2Pyramid): the decode and auxiliary heads read the backbone."""
    cfg = shipped(*MLN)
    cfg.model.neck = neck
    new, changes, _ = quiet(cfg, arch=TINY)
    assert new.model.decode_head.in_channels == [48] * 4
    assert new.model.auxiliary_head.in_channels == 48
    if neck_key:
        assert new.model.neck[neck_key] == 48
    assert 'model.decode_head.in_channels: [768, 768, 768, 768] -> [48, 48, 48, 48] (the ' \
           'backbone width)' in changes


def test_converted_mmseg_neck_config_builds_and_computes_the_rate_loss():
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    cfg = shipped(*MLN)
    new, _, _ = quiet(cfg, arch=TINY, img_size=64, out_indices=(0, 1, 2, 3), adapter_dim=8,
                      pretrained='none.npz')
    model_cfg = new.model
    model_cfg.backbone.pretrained = None
    model_cfg.neck.out_channels = 16
    bn = dict(type='BN', requires_grad=True)
    model_cfg.decode_head.update(in_channels=[16] * 4, channels=8, norm_cfg=bn)
    model_cfg.auxiliary_head.update(in_channels=16, channels=8, norm_cfg=bn)
    init_default_scope('mmseg')
    model = MODELS.build(model_cfg)
    model.init_weights()
    data = dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)] * 2,
                data_samples=[SegDataSample(gt_sem_seg=PixelData(
                    data=torch.randint(0, 150, (1, 64, 64)))) for _ in range(2)])
    losses = model(**model.data_preprocessor(data, True), mode='loss')
    assert 'loss_rate' in losses and 'decode.loss_ce' in losses


def test_mmseg_settings_that_change_the_network_are_refused_and_named():
    cfg = shipped(*MLN)
    cfg.model.backbone.update(output_cls_token=True, patch_norm=True)
    with pytest.raises(ValueError, match=r"output_cls_token=True; patch_norm=True.*"
                                         r"refused rather than dropped"):
        dyt_config(cfg, changes=[])
    cfg = shipped(*MLN)
    cfg.model.backbone.foo = 1
    with pytest.raises(ValueError, match=r"settings \['foo'\] have no DyT counterpart"):
        dyt_config(cfg, changes=[])
    with pytest.raises(ValueError, match=r"no argument\(s\) \['adapterdim'\]"):
        dyt_config(shipped(*MLN), changes=[], adapterdim=8)


def test_mmpretrain_arch_names_are_mmpretrains_and_the_head_is_warned_about():
    cfg = shipped(*CLS)
    cfg.model.backbone.arch = 's'  # mmpretrain's 's': 768 wide, 8 deep
    new, changes, warned = quiet(cfg)
    assert new.model.backbone.arch == dict(embed_dims=768, num_layers=8, num_heads=8,
                                           feedforward_channels=2304)
    assert any('VisionTransformerClsHead(hidden_dim=3072) replaced by LinearClsHead' in w
               for w in warned)
    assert any('no ViT checkpoint' in w for w in warned)  # nothing to check the norm against
    cfg.model.backbone.arch = 'deit-s'
    cfg.model.backbone.out_type = 'avg_featmap'
    new, _, _ = quiet(cfg, pretrained='deit_small_patch16_224.pth', keep_pre_logits=True)
    assert new.model.backbone.arch == 's' and new.model.backbone.pool_norm is True
    assert new.model.head.type == 'VisionTransformerClsHead'
    assert new.model.head.in_channels == 384  # the width reaches the kept head


def test_no_dispatch_means_no_rate_loss_and_dyt_configs_are_refused():
    new, changes, _ = quiet(shipped(*CLS), dispatch=None)
    assert new.model.rate_loss is None and new.model.backbone.dispatch is None
    assert [m['type'] for m in new.val_evaluator] == ['Accuracy', 'EfficiencyMetric']
    with pytest.raises(ValueError, match='already DyTImageClassifier'):
        dyt_config(Config.fromfile(str(ROOT / 'configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py')),
                   changes=[])


def test_timesformer_keeps_its_image_checkpoint_and_normalisation():
    cfg = shipped('mmaction',
                  'recognition/timesformer/timesformer_divST_8xb8-8x32x1-15e_kinetics400-rgb.py')
    new, changes, warned = quiet(cfg)
    assert new.model.backbone.type == 'FrameDyTVisionTransformer'
    assert new.model.backbone.pretrained.endswith('vit_base_patch16_224.pth')
    assert new.model.cls_head.type == 'CrossAttentionHead'
    assert warned == []  # its 127.5 normalisation is the checkpoint's


@pytest.mark.parametrize('name, norm', [
    ('data/pretrained/vit-b16_in21k.npz', IN21K_NORM),
    ('ViT-B_16.npz', IN21K_NORM),
    ('hf-hub:timm/vit_base_patch16_224.augreg2_in21k_ft_in1k', IN21K_NORM),
    ('pretrain/jx_vit_base_p16_224-80ecf9dd.pth', IN21K_NORM),
    ('pretrain/vit_large_patch16_384.pth', IN21K_NORM),
    ('pretrain/deit_base_patch16_224-b5f2ef4d.pth', IMAGENET_NORM),
    ('mae_pretrain_vit_base.pth', IMAGENET_NORM),
    ('my_weights.pth', None),
    (None, None),
])
def test_checkpoint_normalisation_by_name(name, norm):
    assert checkpoint_normalisation(name)[0] == norm
