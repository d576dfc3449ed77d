"""RNGStateHook: what it saves, where it puts the states back."""
import io
import random
from types import SimpleNamespace

import numpy as np
import torch
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from mmdyt.engine.hooks import RNGStateHook
from mmdyt.engine.hooks.rng_state import get_rng_state, set_rng_state


def draws():
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(),
            [random.random() for _ in range(3)])


def resume(saved, loop_type, it, epoch, batches=()):
    """A checkpoint holding ``saved`` loaded into a stand-in runner at
    iteration ``it``, then the train epoch begins; returns the runner."""
    loop = loop_type.__new__(loop_type)
    loop._iter, loop._epoch = it, epoch
    loop.dataloader_iterator = iter(batches)
    runner = SimpleNamespace(train_loop=loop, world_size=1, cfg={})
    hook = RNGStateHook()
    hook.after_load_checkpoint(runner, dict(rng_state=saved))
    hook.before_train_epoch(runner)
    return runner


def test_state_round_trip_through_a_weights_only_checkpoint():
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    np.random.randn()  # a cached gaussian is part of numpy's state
    state = get_rng_state()
    expected = draws()
    buffer = io.BytesIO()
    torch.save(dict(rng_state=state), buffer)
    buffer.seek(0)
    set_rng_state(torch.load(buffer, weights_only=True)['rng_state'])
    assert draws() == expected


def test_saved_into_each_checkpoint():
    checkpoint = {}
    RNGStateHook().before_save_checkpoint(None, checkpoint)
    assert set(checkpoint['rng_state']) >= {'torch', 'numpy', 'python'}


def test_iter_based_resume_restores_after_the_fast_forward():
    """Batches drawn by the fast-forward move the generators; the first new
    batch is loaded from the saved state."""

    def batches():
        while True:
            yield draws()

    saved = get_rng_state()
    expected = draws()
    loop = resume(saved, IterBasedTrainLoop, it=2, epoch=0, batches=batches()).train_loop
    skipped = [next(loop.dataloader_iterator) for _ in range(2)]
    assert expected not in skipped  # the fast-forward drew other numbers
    assert next(loop.dataloader_iterator) == expected
    assert not hasattr(loop.dataloader_iterator, 'skip')  # unwrapped again


def test_epoch_based_resume_restores_before_the_epoch():
    saved = get_rng_state()
    expected = draws()
    resume(saved, EpochBasedTrainLoop, it=8, epoch=2)
    assert draws() == expected


def test_load_from_does_not_restore():
    """A checkpoint loaded as initial weights (iteration 0) leaves the seeded
    streams alone."""
    saved = get_rng_state()
    draws()
    now = get_rng_state()
    expected = draws()
    set_rng_state(now)
    resume(saved, IterBasedTrainLoop, it=0, epoch=0)
    assert draws() == expected


def test_validation_leaves_the_training_stream_alone():
    state = get_rng_state()
    expected = draws()
    set_rng_state(state)
    hook = RNGStateHook()
    hook.before_val(None)
    draws()  # a validation data loader's seed, random transforms ...
    hook.after_val(None)
    assert draws() == expected
