"""Two training iterations and a test run through tools/train.py and
tools/test.py of the Swin and ViT-L config families (DyT / full Swin-B, DyT
ViT-L, a Table 10 dataset config, UperNet + DyT-Swin-B), each in a tiny form
written as a config inheriting the real one, on small data in real on-disk
layouts."""
import glob
import os.path as osp

import pytest

pytest.importorskip('mmpretrain')
pytest.importorskip('mmseg')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from test_seg_train_test import write_ade20k  # noqa: E402

from dataset_writers import write_dtd, write_vtab_task  # noqa: E402
from tiny_dyt import tiny_arch_text  # noqa: E402
from train_runs import load_tool, tiny_vtab_options  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_thread')

VIT = tiny_arch_text(2)
SWIN = "dict(_delete_=True, embed_dims=8, depths=[1, 2, 1, 1], num_heads=[1, 1, 2, 2])"
# family -> (config, backbone arch, head width, whether it dispatches)
FAMILIES = {
    'dyt_swin': ('configs/cls/dyt/dyt-r0.5_swin-b_food101.py', SWIN, 64, True),
    'full_swin': ('configs/cls/full/full_swin-b_food101.py', SWIN, 64, False),
    'dyt_vit-l16': ('configs/cls/dyt/dyt-r0.5_vit-l16_food101.py', VIT, 48, True),
    'dyt_dtd': ('configs/cls/dyt/dyt-r0.5_vit-b16_dtd.py', VIT, 48, True),
    'dyt_swin_upernet': ('configs/seg/dyt/dyt-r0.5_swin-b_upernet_ade20k-512x512.py', SWIN,
                         None, True),
}
CLS_TINY = '''
_base_ = [{base!r}]
model = dict(backbone=dict(arch={arch}, patch_size={patch}, pretrained=None),
             head=dict(in_channels={width}, num_classes=10))
data_preprocessor = dict(num_classes=10)
'''
SEG_TINY = '''
_base_ = [{base!r}]
data_root = {data_root!r}
crop_size = (64, 64)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(arch={arch}, window_size=3, adapter_dim=8, pretrained=None),
    decode_head=dict(in_channels=[8, 16, 32, 64], channels=8, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=32, channels=8, norm_cfg=norm_cfg),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(43, 43)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(256, 64), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
train_dataloader = dict(num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
'''
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def cls_options(family, data_dir, name):
    """--cfg-options: a VTAB-1K task (images + lists) for the Food-101
    configs, the DTD fake in its own layout for the DTD config."""
    if family == 'dyt_dtd':
        options = ['train_cfg.max_epochs=1', 'train_cfg.val_interval=10',
                   'default_hooks.logger.interval=1', f'experiment_name={name}']
        for loader in LOADERS:
            options += [f'{loader}.batch_size=2', f'{loader}.num_workers=0',
                        f'{loader}.persistent_workers=False',
                        f'{loader}.dataset.data_root={data_dir}']
        return options
    splits = dict(train_dataloader='train800val200', val_dataloader='test',
                  test_dataloader='test')
    return [o for o in tiny_vtab_options(data_dir, 'eurosat', splits, name)
            if not o.startswith(('model.backbone.arch=', 'model.backbone.patch_size='))]


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_train_two_iters_and_test(family, tmp_path):
    config, arch, width, dispatching = FAMILIES[family]
    base = osp.join(ROOT, config)
    tiny = tmp_path / 'tiny.py'
    options = {}
    if width is None:
        tiny.write_text(SEG_TINY.format(base=base, arch=arch,
                                        data_root=str(write_ade20k(tmp_path / 'ade'))))
        options = dict(train=[], test=[])
    else:
        patch = 4 if arch == SWIN else 16
        tiny.write_text(CLS_TINY.format(base=base, arch=arch, patch=patch, width=width))
        if family == 'dyt_dtd':
            data_dir = write_dtd(str(tmp_path / 'dtd'), [0, 1, 2], [1], [2, 0])
        else:
            data_dir = str(tmp_path / 'vtab')
            write_vtab_task(data_dir, 'eurosat', {'train800val200': [0, 3, 7, 9],
                                                  'test': [1, 3, 5, 9]})
        options = {step: ['--cfg-options'] + cls_options(family, data_dir, f'{family}_{step}')
                   for step in ('train', 'test')}
    work_dir = str(tmp_path / 'work')
    load_tool('train').main([str(tiny), '--work-dir', work_dir] + options['train'])
    log = open(sorted(glob.glob(osp.join(work_dir, '*', '*.log')))[0]).read()
    assert ('Iter(train) [2/2]' if width is None else 'Epoch(train) [1][2/2]') in log
    assert ('loss_rate:' in log) == dispatching
    checkpoint = osp.join(work_dir, 'iter_2.pth' if width is None else 'epoch_1.pth')
    metrics = load_tool('test').main([str(tiny), checkpoint, '--work-dir', work_dir] +
                                     options['test'])
    assert 0.0 <= metrics['mIoU' if width is None else 'accuracy/top1'] <= 100.0
    assert metrics['efficiency/gflops'] > 0
    assert ('efficiency/activation_rate' in metrics) == dispatching
