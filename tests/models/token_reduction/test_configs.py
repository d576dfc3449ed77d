"""The token-reduction configs carry the poster's Table 5 settings."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmdyt.models.token_reduction import default_layers

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs/cls/*/*.py')))
EXPECTED = {'tome': dict(r=8), 'evit': dict(keep_rate=0.7, layers=None),
            'dynamicvit': dict(keep_ratio=0.7, layers=None, ratio_weight=2.0,
                               distill_weight=0.5)}
REDUCING = [p for p in CONFIGS if '/tome/' in p or '/evit/' in p or '/dynamicvit/' in p
            or '-tome-' in osp.basename(p)]


def test_every_family_has_full_and_adaptformer_on_cifar100_and_vtab1k():
    names = {osp.relpath(p, osp.join(ROOT, 'configs/cls')) for p in REDUCING}
    assert names == {f'{m}/{m}-{s}{v}_vit-b16_{d}.py'
                     for m, s in (('tome', 'r8'), ('evit', 'k0.7'), ('dynamicvit', 'rho0.7'))
                     for v in ('', '-adaptformer') for d in ('cifar100', 'vtab1k')} | {
        'dyt/dyt-r0.5-tome-r8_vit-b16_cifar100.py', 'dyt/dyt-r0.5-tome-r8-d8_vit-b16_vtab1k.py'}


@pytest.mark.parametrize('path', REDUCING, ids=lambda p: osp.basename(p))
def test_settings(path):
    backbone = Config.fromfile(path).model.backbone
    reduction = dict(backbone.token_reduction)
    kind = reduction.pop('type')
    assert reduction == EXPECTED[kind]
    adaptformer = 'adaptformer' in path
    dyt = osp.basename(path).startswith('dyt-')
    assert backbone.freeze_pretrained == (adaptformer or dyt)
    assert backbone.adapter_dim == (8 if dyt and 'vtab1k' in path else
                                    64 if adaptformer or dyt else None)
    assert backbone.dispatch == ('mlp' if dyt else None)


def test_default_stages_are_blocks_4_7_10_of_vit_b():
    assert default_layers(12) == (3, 6, 9)
    assert default_layers(24) == (6, 12, 18)
