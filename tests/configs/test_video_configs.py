"""Every video config loads, follows DyT Table 8 and builds a model."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdyt  # noqa: F401
from tiny_dyt import tiny_arch

CONFIG_ROOT = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'video')
CONFIGS = sorted(p for p in glob.glob(osp.join(CONFIG_ROOT, '*', '*.py')) if '_base_' not in p)
TINY = tiny_arch(num_layers=2)
METHODS = ('dyt', 'full', 'linear', 'adaptformer', 'lora', 'vpt', 'dynamic_full')


def transform(pipeline, name):
    return next(t for t in pipeline if t['type'] == name)


def num_classes(model):
    """Classes of a recognizer config: its head's, or the early exits'."""
    return model.cls_head.num_classes if 'cls_head' in model else model.num_classes


def test_every_method_on_both_datasets():
    names = {osp.relpath(p, CONFIG_ROOT) for p in CONFIGS}
    for method in METHODS:
        assert sum(n.startswith(method + '/') and n.endswith('_k400.py') for n in names) >= 1
        assert sum(n.startswith(method + '/') and n.endswith('_ssv2.py') for n in names) >= 1
    assert 'dyt/dyt-r0.5_vit-b16_8x16x1_k400.py' in names
    assert 'dyt/dyt-moe4-r0.5_vit-b16_u8_ssv2.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, CONFIG_ROOT))
def test_config_follows_table8(path):
    with open(path) as f:
        first_line = f.readline()
    assert first_line.startswith('# ') and len(first_line) > 10
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmaction'
    assert cfg.custom_imports.imports == ['mmdyt']
    full = 'full' in osp.basename(path)
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.optimizer.lr == (1e-4 if full else 1e-3)
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.01
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=256)
    assert cfg.train_dataloader.batch_size * 8 == 128
    assert cfg.param_scheduler[0].type == 'CosineAnnealingLR'
    assert cfg.train_dataloader.dataset.type == 'VideoDataset'
    train, test = cfg.train_dataloader.dataset.pipeline, cfg.test_dataloader.dataset.pipeline
    assert train[0]['type'] == test[0]['type'] == 'CheckedDecordInit'
    backbone = cfg.model.backbone
    assert backbone.pretrained == ('hf-hub:timm/vit_base_patch16_clip_224.openai'
                                   if '_clip-b16_' in path else 'data/pretrained/vit-b16_in21k.npz')
    if path.endswith('_k400.py'):
        assert cfg.train_cfg.max_epochs == 12
        assert num_classes(cfg.model) == 400
        sample = transform(train, 'SampleFrames')
        assert (sample['clip_len'], sample['frame_interval']) == (8, 16)
        assert transform(train, 'RandomRescale')['scale_range'] == (224, 256)
        assert transform(train, 'RandomCrop')['size'] == 224
        assert transform(train, 'Flip')['flip_ratio'] == 0.5
        assert transform(test, 'SampleFrames')['num_clips'] == 3  # 3 temporal views
        assert transform(test, 'CenterCrop')['crop_size'] == 224  # 1 spatial view
    else:
        assert cfg.train_cfg.max_epochs == 50
        assert num_classes(cfg.model) == 174
        assert transform(train, 'UniformSample')['clip_len'] == 8
        assert transform(train, 'ClipRandAugment')['magnitude_level'] == 7
        assert not any(t['type'] == 'Flip' for t in train)
        assert transform(test, 'UniformSample')['num_clips'] == 1  # 1 temporal view
        assert transform(test, 'ThreeCrop')['crop_size'] == 224  # 3 spatial views
    if osp.basename(path).startswith(('dyt', 'dynamic')):
        assert backbone.dispatch == 'mlp' and backbone.adapter_dim == 64
        assert cfg.model.rate_loss.target_rate == 0.5
    else:
        assert backbone.dispatch is None and cfg.model.get('rate_loss') is None
    assert backbone.freeze_pretrained == (not full)


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, CONFIG_ROOT))
def test_config_builds_tiny_model_and_pipelines(path):
    from mmaction.registry import MODELS, TRANSFORMS
    cfg = Config.fromfile(path)
    init_default_scope(cfg.default_scope)
    cfg.model.backbone.update(arch=TINY, img_size=32, patch_size=16, pretrained=None)
    if 'cls_head' in cfg.model:
        cfg.model.cls_head.update(in_channels=48, num_heads=3)
    else:  # early exits after both blocks
        cfg.model.update(num_heads=3, exit_interval=1)
    model = MODELS.build(cfg.model)
    trainable = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    if cfg.model.backbone.freeze_pretrained:
        assert all(model.backbone.is_tuning_parameter(n) for n in trainable)
    else:
        assert 'blocks.0.mlp.fc1.weight' in trainable
    if 'cls_head' in cfg.model:
        scores = model(torch.randn(1, 1, 3, 2, 32, 32), mode='tensor', stage='head')
    else:
        scores = model(torch.randn(1, 1, 3, 2, 32, 32), mode='tensor')[-1]
    assert scores.shape == (1, num_classes(cfg.model))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for step in cfg[loader].dataset.pipeline:
            TRANSFORMS.build(step)
