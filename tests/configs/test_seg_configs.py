"""Every segmentation config loads, follows DyT Table 9 and builds a model."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdyt  # noqa: F401
from tiny_dyt import tiny_arch

CONFIG_ROOT = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'seg')
CONFIGS = sorted(p for p in glob.glob(osp.join(CONFIG_ROOT, '*', '*.py')) if '_base_' not in p)
METHODS = ('dyt', 'full', 'linear', 'adaptformer', 'lora', 'vpt', 'dynamic_full')
TINY = tiny_arch(num_layers=4)
BN = dict(type='BN', requires_grad=True)


def transform(pipeline, name):
    return next(t for t in pipeline if t['type'] == name)


def test_every_method_on_both_datasets():
    names = {osp.relpath(p, CONFIG_ROOT) for p in CONFIGS}
    for method in METHODS:
        for dataset in ('ade20k', 'coco-stuff164k'):
            assert any(n.startswith(method + '/') and n.endswith(f'_{dataset}-512x512.py')
                       for n in names), (method, dataset)
    assert 'dyt/dyt-r0.5_vit-b16_upernet_ade20k-512x512.py' in names
    assert 'dyt/dyt-moe4-r0.5_vit-b16_upernet_coco-stuff164k-512x512.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, CONFIG_ROOT))
def test_config_follows_table9(path):
    with open(path) as f:
        first_line = f.readline()
    assert first_line.startswith('# ') and len(first_line) > 10
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports.imports == ['mmdyt']
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'AdamW' and optimizer.weight_decay == 0.05
    assert optimizer.lr == (1e-4 if 'full' in name else 1e-3)
    assert cfg.train_dataloader.batch_size * 8 == 16
    warmup, decay = cfg.param_scheduler
    assert (warmup.type, warmup.end) == ('LinearLR', 1500)
    assert decay.type == 'CosineAnnealingLR' and decay.begin == 1500
    iters = 160000 if 'ade20k' in name else 80000
    assert cfg.train_cfg.max_iters == decay.end == iters
    num_classes = 150 if 'ade20k' in name else 171
    model = cfg.model
    assert model.type == 'DyTEncoderDecoder'
    assert model.decode_head.num_classes == model.auxiliary_head.num_classes == num_classes
    assert transform(cfg.train_dataloader.dataset.pipeline,
                     'CheckLabelRange')['num_classes'] == num_classes
    assert transform(cfg.test_dataloader.dataset.pipeline,
                     'CheckLabelRange')['num_classes'] == num_classes
    train_pipeline = cfg.train_dataloader.dataset.pipeline
    assert transform(train_pipeline, 'RandomCrop')['crop_size'] == (512, 512)
    assert model.data_preprocessor.size == (512, 512)
    assert model.test_cfg == dict(mode='slide', crop_size=(512, 512), stride=(341, 341))
    assert [e['type'] for e in cfg.test_evaluator] == ['IoUMetric', 'EfficiencyMetric']
    backbone = model.backbone
    head, aux = model.decode_head, model.auxiliary_head
    dinov2 = '_dinov2-b14_' in name  # 518 px: the release's 37 x 37 grid, a 512 crop padded
    assert (backbone.arch, backbone.img_size, backbone.out_type) == (
        'b', 518 if dinov2 else 512, 'featmap')
    if backbone.type == 'DyTSwinTransformer':  # mmseg's Swin-UperNet recipe
        assert tuple(backbone.out_indices) == (0, 1, 2, 3) and backbone.pad_small_map
        assert backbone.pretrained == 'data/pretrained/swin-b_in22k-224.pth'
        assert model.get('neck') is None and head.in_channels == [128, 256, 512, 1024]
        assert (head.type, head.pool_scales, head.channels) == ('UPerHead', (1, 2, 3, 6), 512)
        assert aux.in_channels == 512 and aux.in_index == 2
    else:
        assert tuple(backbone.out_indices) == (3, 5, 7, 11) and backbone.final_norm is False
        assert backbone.pretrained == ('hf-hub:timm/vit_base_patch14_dinov2.lvd142m' if dinov2
                                       else 'data/pretrained/vit-b16_in21k.npz')
        assert model.neck.type == 'Feature2Pyramid' and model.neck.rescales == [4, 2, 1, 0.5]
        assert (head.type, head.pool_scales, head.channels) == ('UPerHead', (1, 2, 3, 6), 768)
        assert model.neck.norm_cfg.type == 'SyncBN'
    assert (aux.type, aux.loss_decode.loss_weight) == ('FCNHead', 0.4)
    assert head.norm_cfg.type == aux.norm_cfg.type == 'SyncBN'
    dispatching = backbone.dispatch is not None
    assert (model.rate_loss is not None) == dispatching
    if dispatching:
        assert model.rate_loss.target_rate == 0.5 and backbone.adapter_dim == 64
    assert backbone.freeze_pretrained == ('full' not in name)


EXPECTED_TRAINABLE = {
    # method: which backbone parameter names train (besides neck and heads)
    'dyt': ('adapters.', 'dispatchers.', 'rel_pos_table'),  # ViT: the reference's bias
    'linear': (),
    'adaptformer': ('adapters.', ),
    'lora': ('lora_', ),
    'vpt': ('prompts', ),
}


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, CONFIG_ROOT))
def test_config_builds_tiny_model(path):
    from mmseg.registry import MODELS
    cfg = Config.fromfile(path)
    model_cfg = cfg.model
    if model_cfg.backbone.type == 'DyTSwinTransformer':
        model_cfg.backbone.update(arch=dict(embed_dims=8, depths=[1, 2, 1, 1],
                                            num_heads=[1, 1, 2, 2]), window_size=2,
                                  pretrained=None)
        model_cfg.decode_head.update(in_channels=[8, 16, 32, 64], channels=8, norm_cfg=BN)
        model_cfg.auxiliary_head.update(in_channels=32, channels=8, norm_cfg=BN)
    else:
        model_cfg.backbone.update(arch=TINY, img_size=32, out_indices=(0, 1, 2, 3),
                                  pretrained=None)
        model_cfg.neck.update(embed_dim=48, norm_cfg=BN)
        model_cfg.decode_head.update(in_channels=[48] * 4, channels=8, norm_cfg=BN)
        model_cfg.auxiliary_head.update(in_channels=48, channels=8, norm_cfg=BN)
    init_default_scope('mmseg')
    model = MODELS.build(model_cfg)
    trainable = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    method = osp.basename(osp.dirname(path))
    if method in EXPECTED_TRAINABLE:
        keys = EXPECTED_TRAINABLE[method]
        assert all(any(k in n for k in keys) for n in trainable) and (bool(trainable) == bool(keys))
    else:  # full and dynamic full tuning
        assert trainable == {n for n, _ in model.backbone.named_parameters()}
    model.eval()
    with torch.no_grad():
        pred = model.predict(torch.randn(1, 3, 32, 48))[0]
    assert pred.seg_logits.data.shape == (model_cfg.decode_head.num_classes, 32, 48)
