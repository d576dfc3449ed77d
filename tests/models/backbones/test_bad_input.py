"""Bad backbone settings and checkpoints, end to end through
``tools/train.py``: each error names the argument, or the checkpoint, the key
and both shapes."""
import re
from pathlib import Path

import pytest
import torch

import train_runs
from tiny_dyt import tiny_arch, tiny_vit


@pytest.fixture
def task(tmp_path):
    return Path(train_runs.write_task(tmp_path / 'data', num_train=8))


@pytest.mark.parametrize('option, message', [
    ('model.backbone.dispatch=token',
     "dispatch must be one of ('mlp', 'attn', 'attn_mlp', 'layer', None), got 'token'"),
    ('model.backbone.arch=huge', "arch must be one of ['b', 'l', 's', 't'] or a dict, got 'huge'"),
])
def test_unknown_dispatch_or_arch_lists_the_choices(tmp_path, task, option, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        train_runs.train_on_task(tmp_path, task, option)


def vit_checkpoint(path, **kwargs):
    """The state dict of the tiny ViT of the training config (two blocks),
    built with ``kwargs``, saved to ``path``."""
    torch.save(tiny_vit(num_layers=2, **kwargs).state_dict(), path)
    return path


@pytest.mark.parametrize('kwargs, key, shapes', [
    (dict(patch_size=16), 'patch_embed.proj.weight', r'\(48, 3, 16, 16\) in the checkpoint '
     r'and \(48, 3, 8, 8\) in the model'),
    (dict(arch=tiny_arch(num_layers=2, embed_dims=96, num_heads=6)), 'cls_token',
     r'\(1, 1, 96\) in the checkpoint and \(1, 1, 48\) in the model'),
])
def test_pretrained_of_another_arch_or_patch_size_names_key_and_shapes(
        tmp_path, task, kwargs, key, shapes):
    path = vit_checkpoint(tmp_path / 'other.pth', **kwargs)
    with pytest.raises(ValueError, match=rf'checkpoint {path} does not fit the model: {key} has '
                       rf'shape {shapes} \(another arch or patch size\?\)'):
        train_runs.train_on_task(tmp_path, task, f'model.backbone.pretrained={path}')


def test_truncated_pretrained_checkpoint_is_named(tmp_path, task):
    whole = vit_checkpoint(tmp_path / 'whole.pth').read_bytes()
    path = tmp_path / 'truncated.pth'
    path.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match=rf'cannot read checkpoint {path}: the file is truncated'):
        train_runs.train_on_task(tmp_path, task, f'model.backbone.pretrained={path}')


def test_resume_from_a_checkpoint_of_another_arch_names_the_key(tmp_path, task):
    config = train_runs.write_config(tmp_path / 'small.py', task, 'train_cfg = dict(max_iters=1)\n')
    train_runs.train_in_process(config, tmp_path / 'small', '--no-validate')
    with pytest.raises(ValueError, match='backbone.cls_token'):
        train_runs.train_on_task(tmp_path, task, 'model.backbone.arch.embed_dims=96',
                                 'model.head.in_channels=96',
                                 extra_args=['--resume', tmp_path / 'small' / 'iter_1.pth'])
