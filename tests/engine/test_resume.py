"""Exact resume through ``tools/train.py --resume``: DyT with Gumbel noise,
adapter dropout and random augmentation, resumed after N iterations, gives
the losses of an uninterrupted run, bit for bit."""

import pytest

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
