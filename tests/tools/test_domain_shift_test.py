"""tools/test.py on the ImageNet domain-shift configs (Dyn-Adapter Table 6):
a checkpoint tested on fake ImageNet-A and -V2 folder releases reports the
accuracy over the set's classes and the exit histogram."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

from dataset_writers import write_jpeg
from train_runs import load_tool

pytestmark = pytest.mark.usefixtures('one_thread')
CONFIG = 'configs/cls/dyn_repadapter/dyn-repadapter_vit-b16_imagenet-16shot_test-{}.py'
SYNSETS = [f'n{index:08d}' for index in range(1000)]


@pytest.mark.parametrize('variant, folders', [('a', [SYNSETS[1], SYNSETS[4]]), ('v2', ['1', '4'])])
def test_domain_shift_config(variant, folders, tmp_path):
    synsets = tmp_path / 'synsets.txt'
    synsets.write_text(''.join(f'{s} name\n' for s in SYNSETS))
    for folder in folders:
        for j in range(2):
            write_jpeg(str(tmp_path / 'set' / folder / f'{j}.jpg'), size=(40, 36), value=j)
    options = ['model.backbone.arch=t', 'model.backbone.patch_size=32',
               'model.backbone.pretrained=None', 'test_dataloader.batch_size=2',
               'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
               f'test_dataloader.dataset.data_root={tmp_path / "set"}']
    if variant == 'a':
        options.append(f'test_dataloader.dataset.synset_file={synsets}')
    config = CONFIG.format(variant)
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({'model.backbone.arch': 't', 'model.backbone.patch_size': 32,
                         'model.backbone.pretrained': None})
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        checkpoint = tmp_path / 'random.pth'
        torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, checkpoint)
    metrics = load_tool('test').main([config, str(checkpoint), '--work-dir',
                                      str(tmp_path / 'work'), '--cfg-options'] + options)
    assert set(metrics) >= {'accuracy/top1', 'accuracy/top5', 'early_exit/exit3_ratio'}
    if variant == 'a':  # two of the 200 classes present: top-5 of 2 classes holds the label
        assert metrics['accuracy/top5'] == 100.0
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0
