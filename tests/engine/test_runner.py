"""mmdyt.engine.runner.build_runner through tools/train.py: settings that
would train nothing, and backbone settings (e.g. from ``--cfg-options``)
its constructor refuses, are errors naming the config key."""
import re

import pytest

import train_runs


@pytest.fixture(scope='module')
def task(tmp_path_factory):
    return train_runs.write_task(tmp_path_factory.mktemp('data'), num_train=8)


@pytest.mark.parametrize('option', ['train_cfg.max_iters=-3', 'train_cfg.max_iters=0',
                                    'train_cfg.max_iters=1.5', 'train_cfg.max_iters=abc'])
def test_max_iters_that_trains_nothing_is_refused(task, tmp_path, option):
    value = option.split('=')[1]
    shown = repr(value) if value == 'abc' else value
    with pytest.raises(ValueError, match=re.escape(f'train_cfg.max_iters must be a whole number '
                                                   f'>= 1, got {shown}')):
        train_runs.train_on_task(tmp_path, task, option)
    assert not (tmp_path / 'work' / 'losses_rank0.jsonl').exists()


def test_max_epochs_that_trains_nothing_is_refused(task, tmp_path):
    config = train_runs.write_config(tmp_path / 'epochs.py', task, (
        "train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=-1)\n"))
    with pytest.raises(ValueError, match=r'train_cfg.max_epochs must be a whole number >= 1, '
                       'got -1'):
        train_runs.train_in_process(config, tmp_path / 'work', '--no-validate')


@pytest.mark.parametrize('option, message', [
    ('model.backbone.embed_dims=abc', "model.backbone.embed_dims: DyTVisionTransformer has no "
     "setting 'embed_dims'"),
    ('model.backbone.dispatch=[mlp,attn]', "model.backbone.dispatch=['mlp', 'attn'] is not a "
     'valid DyTVisionTransformer setting'),
    ('model.backbone.img_size=-32', 'model.backbone.img_size=-32 is not a valid '
     'DyTVisionTransformer setting: ValueError: img_size must be'),
    ('model.backbone.capacity=half', "model.backbone.capacity='half' is not a valid "
     'DyTVisionTransformer setting'),
    ('model.backbone.capacity=0.5,0.7', 'model.backbone.capacity=[0.5, 0.7] is not a valid '
     'DyTVisionTransformer setting'),
    ('model.backbone.patch_size=abc', "model.backbone.patch_size='abc' is not a valid "
     'DyTVisionTransformer setting'),
])
def test_bad_backbone_setting_names_the_key(task, tmp_path, option, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        train_runs.train_on_task(tmp_path, task, option)


def test_a_good_capacity_given_as_quoted_text_trains(task, tmp_path):
    """``capacity='0.5'`` on the command line is the number 0.5 (mmengine's
    DictAction strips the quotes)."""
    train_runs.train_on_task(tmp_path, task, "model.backbone.capacity='0.5'",
                             'train_cfg.max_iters=1')
    assert list(train_runs.read_losses(tmp_path / 'work')) == [1]
