"""Exact resume through ``tools/train.py --resume``: DyT with Gumbel noise,
adapter dropout and random augmentation, resumed after N iterations, gives
the losses of an uninterrupted run, bit for bit."""

import pytest
import torch

import train_runs

N, M = 3, 3
# 16 images, batch 4: iterations 5 and 6 are in the second epoch (the
# sampler reshuffles); validation and a checkpoint at iteration 3.
NOISY = '''
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader.update(batch_size=4)
train_dataloader['dataset']['pipeline'] = train_pipeline
val_dataloader.update(batch_size=4)
train_cfg = dict(max_iters={max_iters}, val_interval={n})
default_hooks = dict(checkpoint=dict(interval={n}))
'''


def write(tmp_path, name, max_iters, task, hooks=None):
    body = NOISY.format(max_iters=max_iters, n=N)
    if hooks is not None:
        body += f'custom_hooks = {hooks!r}\n'
    return train_runs.write_config(tmp_path / name, task, body)


@pytest.fixture(scope='module')
def task(tmp_path_factory):
    return train_runs.write_task(tmp_path_factory.mktemp('data'), num_train=16)


def test_resume_continues_exactly(task, tmp_path):
    full, part = tmp_path / 'full', tmp_path / 'part'
    train_runs.train(write(tmp_path, 'full.py', N + M, task), full)
    train_runs.train(write(tmp_path, 'part.py', N, task), part)
    assert (part / f'iter_{N}.pth').exists() and not (part / f'iter_{N + 1}.pth').exists()
    _, out = train_runs.train(write(tmp_path, 'resume.py', N + M, task), part,
                              '--resume', part / f'iter_{N}.pth')
    assert f'resumed epoch: 0, iter: {N}' in out

    uninterrupted, resumed = train_runs.read_losses(full), train_runs.read_losses(part)
    assert sorted(resumed) == sorted(uninterrupted) == list(range(1, N + M + 1))
    assert resumed == uninterrupted  # every loss term, every iteration, exactly
    # Gumbel noise is really there: the rate loss moves between iterations.
    assert len({r['loss_rate'] for r in uninterrupted.values()}) > 1


def test_resume_without_rng_state_differs(task, tmp_path):
    """Control: without :class:`RNGStateHook` the resumed losses differ, so
    the test above measures the hook, not luck."""
    hooks = [dict(type='LossRecorderHook')]
    full, part = tmp_path / 'full', tmp_path / 'part'
    train_runs.train(write(tmp_path, 'full.py', N + M, task, hooks), full)
    train_runs.train(write(tmp_path, 'part.py', N, task, hooks), part)
    train_runs.train(write(tmp_path, 'resume.py', N + M, task, hooks), part,
                     '--resume', part / f'iter_{N}.pth')
    uninterrupted, resumed = train_runs.read_losses(full), train_runs.read_losses(part)
    assert all(resumed[i] == uninterrupted[i] for i in range(1, N + 1))
    assert resumed[N + 1] != uninterrupted[N + 1]


# Epoch based: 16 images, batch 4, 2 epochs of 4 iterations; a checkpoint
# after every iteration, so some are saved inside an epoch.
EPOCHS = '''
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader.update(batch_size=4)
train_dataloader['dataset']['pipeline'] = train_pipeline
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=2, val_interval=10)
default_hooks = dict(checkpoint=dict(interval=1, by_epoch=False))
'''


@pytest.fixture(scope='module')
def epoch_run(task, tmp_path_factory):
    """The config and work dir of an uninterrupted epoch-based run."""
    tmp = tmp_path_factory.mktemp('epochs')
    config = train_runs.write_config(tmp / 'epochs.py', task, EPOCHS)
    train_runs.train(config, tmp / 'full', '--no-validate')
    return config, tmp / 'full'


@pytest.mark.parametrize('at', [3, 4, 6])
def test_epoch_based_resume_inside_an_epoch_continues_exactly(epoch_run, tmp_path, at):
    """Resumed from iteration 3 (inside epoch 1), 4 (its last batch, saved
    before the epoch ended) or 6 (inside epoch 2): the run trains the
    remaining iterations only, on the same batches with the same noise."""
    config, full = epoch_run
    _, out = train_runs.train(config, tmp_path / 'resumed', '--no-validate',
                              '--resume', full / f'iter_{at}.pth')
    uninterrupted = train_runs.read_losses(full)
    resumed = train_runs.read_losses(tmp_path / 'resumed')
    assert sorted(uninterrupted) == list(range(1, 9))
    assert sorted(resumed) == list(range(at + 1, 9))
    assert resumed == {i: uninterrupted[i] for i in resumed}
    skipped = {3: 3, 4: 4, 6: 2}[at]
    assert f'skipping its {skipped} batches already trained' in out


SGD = "optim_wrapper = dict(optimizer=dict(_delete_=True, type='{type}', lr=0.01{extra}))\n"


@pytest.fixture(scope='module')
def adamw_checkpoint(task, tmp_path_factory):
    """A checkpoint of 2 iterations with AdamW (the tiny config's)."""
    tmp = tmp_path_factory.mktemp('adamw')
    config = train_runs.write_config(tmp / 'adamw.py', task, 'train_cfg = dict(max_iters=2)\n')
    train_runs.train_in_process(config, tmp / 'work', '--no-validate')
    return tmp / 'work' / 'iter_2.pth'


@pytest.mark.parametrize('optimizer, extra, found', [
    ('SGD', ', momentum=0.9', 'is of AdamW'),
    ('Adam', '', 'is of AdamW'),  # the same settings, another optimizer
])
def test_resume_with_another_optimizer_is_refused(task, adamw_checkpoint, tmp_path, optimizer,
                                                  extra, found):
    config = train_runs.write_config(
        tmp_path / 'other.py', task,
        'train_cfg = dict(max_iters=4)\n' + SGD.format(type=optimizer, extra=extra))
    with pytest.raises(ValueError, match=(
            rf"cannot resume from {adamw_checkpoint}: its optimizer state {found}, the "
            rf"config's optim_wrapper.optimizer is {optimizer}; .* tools/train.py CONFIG "
            rf"--cfg-options load_from={adamw_checkpoint} \(without --resume\)")):
        train_runs.train_in_process(config, tmp_path / 'work', '--no-validate',
                                    '--resume', adamw_checkpoint)


def test_resume_of_an_older_checkpoint_with_another_optimizer_names_the_settings(
        task, adamw_checkpoint, tmp_path):
    """A checkpoint without ``meta.optimizer_type`` (written before it was
    recorded): the settings SGD needs and the AdamW state lacks tell."""
    checkpoint = torch.load(adamw_checkpoint, weights_only=True)
    del checkpoint['meta']['optimizer_type']
    older = tmp_path / 'older.pth'
    torch.save(checkpoint, older)
    config = train_runs.write_config(
        tmp_path / 'sgd.py', task,
        'train_cfg = dict(max_iters=4)\n' + SGD.format(type='SGD', extra=', momentum=0.9'))
    with pytest.raises(ValueError, match=rf"cannot resume from {older}: its optimizer state "
                       r"lacks the settings \['dampening', 'momentum'\] of SGD"):
        train_runs.train_in_process(config, tmp_path / 'work', '--no-validate', '--resume', older)
    # the way out the message gives: the weights, a fresh optimizer
    train_runs.train_in_process(config, tmp_path / 'fresh', '--no-validate', '--cfg-options',
                                f'load_from={older}')
    assert sorted(train_runs.read_losses(tmp_path / 'fresh')) == [1, 2, 3, 4]
