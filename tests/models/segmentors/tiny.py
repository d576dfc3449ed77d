"""Tiny versions of the segmentation configs for CPU tests."""
import os.path as osp

from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdyt  # noqa: F401
from tiny_dyt import tiny_arch

CONFIG_ROOT = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', 'seg')
DYT_CONFIG = osp.join(CONFIG_ROOT, 'dyt', 'dyt-r0.5_vit-b16_upernet_ade20k-512x512.py')
FULL_CONFIG = osp.join(CONFIG_ROOT, 'full', 'full_vit-b16_upernet_ade20k-512x512.py')
TINY_ARCH = tiny_arch(num_layers=4)
BN = dict(type='BN', requires_grad=True)


def tiny_overrides(crop=64, stride=43, mode='slide'):
    """cfg-options turning a ViT-B/16 UperNet config into a 4-layer, 48-dim
    model on ``crop`` x ``crop`` inputs with BN instead of SyncBN."""
    return {
        'model.backbone.arch': TINY_ARCH,
        'model.backbone.img_size': crop,
        'model.backbone.out_indices': (0, 1, 2, 3),
        'model.backbone.pretrained': None,
        'model.neck.embed_dim': 48,
        'model.neck.norm_cfg': BN,
        'model.decode_head.in_channels': [48] * 4,
        'model.decode_head.channels': 16,
        'model.decode_head.norm_cfg': BN,
        'model.auxiliary_head.in_channels': 48,
        'model.auxiliary_head.channels': 8,
        'model.auxiliary_head.norm_cfg': BN,
        'model.data_preprocessor.size': (crop, crop),
        'model.test_cfg': dict(mode=mode, crop_size=(crop, crop), stride=(stride, stride)),
    }


def build_tiny(config=DYT_CONFIG, **kwargs):
    """The segmentor of ``config`` in its tiny form (train mode)."""
    from mmseg.registry import MODELS
    cfg = Config.fromfile(config)
    for key, value in tiny_overrides(**kwargs).items():
        *parents, name = key.split('.')
        node = cfg
        for parent in parents:
            node = node[parent]
        node[name] = value
    init_default_scope('mmseg')
    return MODELS.build(cfg.model)
