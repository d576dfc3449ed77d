"""Every classification config parses, carries the conventions, and (for the
DyT classifier configs) builds; the paper's settings are checked by number."""
import glob
import os.path as osp
import re

import pytest

pytest.importorskip('mmpretrain')

from mmengine.config import Config  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402
from mmpretrain.registry import DATASETS, MODELS  # noqa: E402

from tiny_dyt import tiny_arch  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', 'cls', '**', '*.py'),
                                      recursive=True) if '_base_' not in p)
DYT_CONFIGS = [p for p in CONFIGS if Config.fromfile(p).model.type == 'DyTImageClassifier']
TINY = tiny_arch(num_layers=2)
#: backbone type -> tiny backbone overrides and the width of its output
TINY_BACKBONES = {
    'DyTVisionTransformer': (dict(arch=TINY, img_size=32, patch_size=16), 48),
    'DyTSwinTransformer': (dict(arch=dict(embed_dims=8, depths=[1, 2, 1, 1],
                                          num_heads=[1, 1, 2, 2]),
                                img_size=32, patch_size=4, window_size=1), 64),
}


def rel(path):
    return osp.relpath(path, ROOT)


def build_model(cfg, **backbone):
    model = cfg.model.copy()
    model.backbone.update(pretrained=None, **backbone)
    model.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(model)


def trainable(model, prefix='backbone.'):
    return sum(p.numel() for n, p in model.named_parameters()
               if p.requires_grad and n.startswith(prefix))


@pytest.mark.parametrize('path', CONFIGS, ids=rel)
def test_conventions(path):
    with open(path) as f:
        first = f.readline()
    assert re.match(r'# \S', first), f'{rel(path)}: first line must be a model-zoo comment'
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmpretrain'
    assert 'mmdyt' in cfg.custom_imports['imports']
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            assert DATASETS.get(cfg[loader].dataset.type) is not None


def test_dyt_configs_found():
    assert len(DYT_CONFIGS) >= 60


@pytest.mark.parametrize('path', DYT_CONFIGS, ids=rel)
def test_builds_tiny(path):
    cfg = Config.fromfile(path)
    backbone, width = TINY_BACKBONES[cfg.model.backbone.type]
    cfg.model.head.in_channels = width
    model = build_model(cfg, **backbone)
    name = osp.basename(path)
    rate = re.search(r'-r(0\.\d)', name)
    if rate and not name.startswith(('lora', 'vpt')):
        assert model.rate_loss.target_rate == float(rate.group(1))
    else:
        assert model.rate_loss is None
    expected_classes = {'cifar100': 100, 'svhn': 10, 'food101': 101, 'vtab1k': 100,
                        'cifar10': 10, 'dtd': 47, 'fgvc_aircraft': 100, 'flowers102': 102,
                        'oxford_pets': 37, 'stanford_cars': 196}
    dataset = re.search(r'_(?:vit-[bl]16|swin-b|dinov2-b14|siglip-b16|eva02-b14)_(.+)$',
                        name[:-3]).group(1)
    assert model.head.num_classes == expected_classes[dataset]
    assert cfg.data_preprocessor.get('num_classes', model.head.num_classes) == \
        expected_classes[dataset]


@pytest.mark.parametrize('path', [p for p in DYT_CONFIGS if 'vtab1k' not in p], ids=rel)
def test_table7_schedule(path):
    cfg = Config.fromfile(path)
    full = not cfg.model.backbone.freeze_pretrained
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(4e-4 if full else 4e-3)
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.01
    assert cfg.auto_scale_lr.base_batch_size == 1024 == 8 * cfg.train_dataloader.batch_size
    assert cfg.train_cfg.max_epochs == 100
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.end, cosine.type, cosine.end) == (
        'LinearLR', 20, 'CosineAnnealingLR', 100)
    # the paper's crop; the -distill configs (the reference code's recipe) add a flip
    augment = ['RandomResizedCrop', 'RandomFlip'] if '-distill' in path else ['RandomResizedCrop']
    assert [t.type for t in cfg.train_pipeline][-1 - len(augment):-1] == augment
    assert cfg.model.backbone.adapter_scale == 0.1


@pytest.mark.parametrize('rate', ['0.5', '0.7', '0.9'])
def test_vtab_table5_settings(rate):
    cfg = Config.fromfile(osp.join(ROOT, f'configs/cls/dyt/dyt-r{rate}-d8_vit-b16_vtab1k.py'))
    assert cfg.model.backbone.adapter_dim == 8
    assert cfg.model.rate_loss.target_rate == float(rate)
    assert cfg.optim_wrapper.optimizer.lr == 1e-3
    assert cfg.train_dataloader.batch_size == 64
    assert cfg.train_cfg.max_epochs == 100
    assert cfg.param_scheduler[0].type == 'CosineAnnealingLR'
    assert not any('Random' in t.type for t in cfg.train_dataloader.dataset.pipeline)
    assert cfg.train_dataloader.dataset.split == 'train800val200'
    assert cfg.test_dataloader.dataset.split == 'test'


@pytest.mark.parametrize('path,trainable_m', [
    ('configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py', 1.199),  # 12 x (2 x 768 x 64 + 832 + 769)
    ('configs/cls/dyt/dyt-r0.5-d8_vit-b16_vtab1k.py', 0.166),  # Table 5: 0.16 M
    ('configs/cls/full/full_vit-b16_cifar100.py', 85.799),
    ('configs/cls/linear/linear_vit-b16_cifar100.py', 0.0),
])
def test_real_vit_b16_builds(path, trainable_m):
    cfg = Config.fromfile(osp.join(ROOT, path))
    model = build_model(cfg)
    assert trainable(model) / 1e6 == pytest.approx(trainable_m, abs=1e-3)
    assert trainable(model, 'head.') == 768 * 100 + 100
