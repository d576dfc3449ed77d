"""Bad input, end to end through ``tools/train.py``: each error names the
problem (argument, file, line)."""
import re
from pathlib import Path

import pytest
import torch

import train_runs

from mmdyt.models.backbones import DyTVisionTransformer

TINY = dict(embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=96)


@pytest.fixture
def task(tmp_path):
    return Path(train_runs.write_task(tmp_path / 'data', num_train=8))


def train(tmp_path, task, *options, extra_args=()):
    config = train_runs.write_config(tmp_path / 'bad_input.py', task)
    args = ['--no-validate', *extra_args]
    if options:
        args += ['--cfg-options', *options]
    train_runs.train_in_process(config, tmp_path / 'work', *args)


@pytest.mark.parametrize('option, message', [
    ('model.backbone.dispatch=token',
     "dispatch must be one of ('mlp', 'attn', 'attn_mlp', 'layer', None), got 'token'"),
    ('model.backbone.arch=huge', "arch must be one of ['b', 'l', 's', 't'] or a dict, got 'huge'"),
])
def test_unknown_dispatch_or_arch(tmp_path, task, option, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        train(tmp_path, task, option)


def vit_checkpoint(path, **kwargs):
    settings = dict(arch=TINY, img_size=32, patch_size=8)
    settings.update(kwargs)
    torch.save(DyTVisionTransformer(**settings).state_dict(), path)
    return path


@pytest.mark.parametrize('kwargs, key, shapes', [
    (dict(patch_size=16), 'patch_embed.proj.weight', r'\(48, 3, 16, 16\) in the checkpoint '
     r'and \(48, 3, 8, 8\) in the model'),
    (dict(arch=dict(TINY, embed_dims=96, num_heads=6)), 'cls_token',
     r'\(1, 1, 96\) in the checkpoint and \(1, 1, 48\) in the model'),
])
def test_pretrained_of_another_arch_or_patch_size(tmp_path, task, kwargs, key, shapes):
    path = vit_checkpoint(tmp_path / 'other.pth', **kwargs)
    with pytest.raises(ValueError, match=rf'checkpoint {path} does not fit the model: {key} has '
                       rf'shape {shapes} \(another arch or patch size\?\)'):
        train(tmp_path, task, f'model.backbone.pretrained={path}')


def test_truncated_pretrained_checkpoint(tmp_path, task):
    whole = vit_checkpoint(tmp_path / 'whole.pth').read_bytes()
    path = tmp_path / 'truncated.pth'
    path.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match=rf'cannot read checkpoint {path}: the file is truncated'):
        train(tmp_path, task, f'model.backbone.pretrained={path}')


def test_empty_split(tmp_path, task):
    (task / 'train800val200.txt').write_text('# no images yet\n\n')
    with pytest.raises(ValueError, match=rf'{task}/train800val200.txt: empty split'):
        train(tmp_path, task)


def test_label_out_of_range(tmp_path, task):
    split = task / 'train800val200.txt'
    lines = split.read_text().splitlines()
    lines[2] = lines[2].rsplit(maxsplit=1)[0] + ' 7'
    split.write_text('\n'.join(lines) + '\n')
    with pytest.raises(ValueError, match=rf'{split}:3: label 7 outside \[0, 4\)'):
        train(tmp_path, task)


@pytest.mark.parametrize('content, problem', [
    (b'not a jpeg at all', r"cannot be decoded as an image \(17 bytes, starting b'not a jp'\)"),
    (b'', r'is empty \(0 bytes\)'),
])
def test_item12_undecodable_or_empty_image_names_file_and_line(tmp_path, task, content, problem):
    image = task / 'images' / 'train800val200' / '5.jpg'
    image.write_bytes(content)
    split = task / 'train800val200.txt'
    line = next(i for i, text in enumerate(split.read_text().splitlines(), 1)
                if text.startswith('images/train800val200/5.jpg'))
    with pytest.raises(ValueError, match=rf'{split}:{line}: image {image} {problem}'):
        train(tmp_path, task, 'train_dataloader.sampler.shuffle=False')


FEWSHOT = Path(__file__).resolve().parents[1] / 'configs/cls/dyn_adapter/_base_/fewshot_bs64.py'


@pytest.mark.parametrize('content, problem', [
    (b'not a png', r"cannot be decoded as an image \(9 bytes, starting b'not a pn'\)"),
    (b'', r'is empty \(0 bytes\)'),
])
@pytest.mark.parametrize('listed', [True, False], ids=['ann_file', 'folder'])
def test_item12_bad_image_in_mmpretrain_custom_dataset_names_file_and_line(
        tmp_path, content, problem, listed):
    """mmpretrain's ``CustomDataset`` of the few-shot configs (test pipeline),
    from an annotation list or from class folders (compat fix
    ``mmpretrain_image_errors``)."""
    import mmcv
    import numpy as np
    from mmengine.config import Config
    from mmpretrain.registry import DATASETS
    images = tmp_path / 'images'
    for name in 'ab':
        (images / name).mkdir(parents=True)
        for i in range(2):
            mmcv.imwrite(np.zeros((8, 8, 3), np.uint8), str(images / name / f'{i}.png'))
    (images / 'b' / '1.png').write_bytes(content)
    (tmp_path / 'list.txt').write_text(''.join(f'{name}/{i}.png {label}\n'
                                               for label, name in enumerate('ab')
                                               for i in range(2)))
    dataset = Config.fromfile(FEWSHOT).test_dataloader.dataset
    dataset.update(data_root=str(tmp_path), ann_file='list.txt' if listed else '')
    dataset = DATASETS.build(dataset)
    where = f'{tmp_path}/list.txt:4: ' if listed else ''
    with pytest.raises(ValueError, match=rf'^{where}image {images}/b/1.png {problem}$'):
        [dataset[i] for i in range(len(dataset))]


def test_item12_annotation_with_bom_reads(tmp_path, task):
    """A UTF-8 byte-order mark (Windows editors) is not part of the first path."""
    split = task / 'train800val200.txt'
    split.write_bytes(b'\xef\xbb\xbf' + split.read_bytes())
    train(tmp_path, task, 'train_cfg.max_iters=1')


def test_item12_non_utf8_annotation_names_file_and_line(tmp_path, task):
    split = task / 'train800val200.txt'
    lines = split.read_bytes().splitlines()
    lines[3] = lines[3].replace(b'images', b'im\xe4ges', 1)
    split.write_bytes(b'\n'.join(lines) + b'\n')
    with pytest.raises(ValueError, match=rf'{split}:4: not UTF-8 text \(byte 0xe4 at column 3\)'):
        train(tmp_path, task)


def test_item13_label_beyond_the_head_names_label_line_and_num_classes(tmp_path, task):
    split = task / 'train800val200.txt'
    line = next(i for i, text in enumerate(split.read_text().splitlines(), 1)
                if text.endswith(' 3'))
    with pytest.raises(ValueError, match=rf'{split}:{line}: label 3 does not fit the model\'s '
                       r'head with num_classes=3 \(labels must be in \[0, 3\)\)'):
        train(tmp_path, task, 'model.head.num_classes=3')


def test_truncated_checkpoint_to_resume(tmp_path, task):
    whole = vit_checkpoint(tmp_path / 'whole.pth').read_bytes()
    path = tmp_path / 'truncated.pth'
    path.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match=rf'cannot read checkpoint {path}: the file is truncated'):
        train(tmp_path, task, extra_args=['--resume', path])


def test_missing_checkpoint_to_resume(tmp_path, task):
    path = tmp_path / 'iter_9.pth'
    with pytest.raises(FileNotFoundError, match=rf'checkpoint {path} does not exist'):
        train(tmp_path, task, extra_args=['--resume', path])


def test_resume_from_a_checkpoint_of_another_arch(tmp_path, task):
    config = train_runs.write_config(tmp_path / 'small.py', task, 'train_cfg = dict(max_iters=1)\n')
    train_runs.train_in_process(config, tmp_path / 'small', '--no-validate')
    with pytest.raises(ValueError, match='backbone.cls_token'):
        train(tmp_path, task, 'model.backbone.arch.embed_dims=96', 'model.head.in_channels=96',
              extra_args=['--resume', tmp_path / 'small' / 'iter_1.pth'])
