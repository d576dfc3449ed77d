"""Random number generator states in checkpoints, for exact resume.

The dispatchers' Gumbel noise, dropout and the data augmentation draw from
the global torch / numpy / python ``random`` generators. mmengine saves none
of them, so a resumed run continues with other noise than an uninterrupted
one. :class:`RNGStateHook` saves them into every checkpoint and puts them back
at the point of the resumed run that matches the moment of saving.
"""
import logging
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop


def get_rng_state():
    """States of the global torch (CPU and CUDA), numpy and python ``random``
    generators, as tensors, lists and ints only (a checkpoint loaded with
    ``weights_only=True`` accepts them)."""
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state = dict(
        torch=torch.get_rng_state(),
        numpy=[kind, keys.tolist(), pos, has_gauss, cached_gaussian],
        python=random.getstate())
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    """Inverse of :func:`get_rng_state`."""
    torch.set_rng_state(state['torch'])
    kind, keys, pos, has_gauss, cached_gaussian = state['numpy']
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss,
                         cached_gaussian))
    version, internal, gauss_next = state['python']
    random.setstate((version, tuple(internal), gauss_next))
    if 'cuda' in state and torch.cuda.is_available():
        if len(state['cuda']) != torch.cuda.device_count():
            raise ValueError(f'the checkpoint holds CUDA RNG states of {len(state["cuda"])} '
                             f'devices, this machine has {torch.cuda.device_count()}')
        torch.cuda.set_rng_state_all(state['cuda'])


class _RestoreAfter:
    """Wraps the iter-based loop's data iterator: after the loop's
    fast-forward over ``skip`` already trained batches, puts ``state`` back
    before the next batch is loaded, then unwraps itself."""

    def __init__(self, loop, skip, state):
        self.loop = loop
        self.iterator = loop.dataloader_iterator
        self.skip = skip
        self.state = state

    def __iter__(self):
        return self

    def __next__(self):
        if self.skip == 0:
            set_rng_state(self.state)
            self.loop.dataloader_iterator = self.iterator
        self.skip -= 1
        return next(self.iterator)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves the global RNG states in each checkpoint (key ``rng_state``) and
    restores them on resume, so that Gumbel noise, dropout and augmentation
    continue exactly as in an uninterrupted run.

    Where the states are put back:

    * epoch-based loop: in ``before_train_epoch`` of the resumed run, i.e.
      before the epoch's data loader iterator is made, as in the run that
      saved them; for a checkpoint saved inside an epoch, after
      :class:`~mmdyt.engine.hooks.resume.ResumeHook` (registered by
      ``build_runner``) has skipped the epoch's batches already trained,
      right before the first new batch is loaded;
    * iter-based loop: mmengine fast-forwards the data loader over the
      already trained iterations (running their transforms, which draw
      random numbers); the states are put back after that, right before the
      first new batch is loaded.

    Validation does not move the training random stream: the states are
    saved in ``before_val`` and put back in ``after_val`` (a data loader
    iterator draws a seed when it is made), so a run that validated at the
    checkpoint's iteration and one resumed from it stay identical.

    Only rank 0 writes checkpoints, so the states saved are rank 0's. With
    ``randomness.diff_rank_seed=False`` (mmengine's default) all ranks draw
    the same streams, and rank 0's states are every rank's; with
    ``diff_rank_seed=True`` the other ranks continue from rank 0's states
    (a warning says so).

    A checkpoint loaded with ``load_from`` (not resumed) leaves the states
    alone.
    """
    priority = 'VERY_HIGH'

    def __init__(self):
        self._pending = None
        self._val_state = None

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint['rng_state'] = get_rng_state()

    def after_load_checkpoint(self, runner, checkpoint):
        self._pending = checkpoint.get('rng_state')
        if self._pending is None:
            print_log('the checkpoint has no rng_state: random streams restart from the seed',
                      logger='current')

    def before_train_epoch(self, runner):
        state, self._pending = self._pending, None
        loop = runner.train_loop
        if state is None or (loop.iter == 0 and loop.epoch == 0):
            return
        if runner.world_size > 1 and runner.cfg.get('randomness', {}).get('diff_rank_seed'):
            print_log('diff_rank_seed=True: every rank resumes with the RNG states of rank 0',
                      logger='current', level=logging.WARNING)
        if isinstance(loop, IterBasedTrainLoop):
            loop.dataloader_iterator = _RestoreAfter(loop, loop.iter, state)
        elif isinstance(getattr(loop, 'mmdyt_after_skip', None), list):
            # resumed inside an epoch: after ResumeHook's skip of its trained batches
            loop.mmdyt_after_skip.append(lambda: set_rng_state(state))
        else:
            set_rng_state(state)

    def before_val(self, runner):
        self._val_state = get_rng_state()

    def after_val(self, runner):
        if self._val_state is not None:
            set_rng_state(self._val_state)
            self._val_state = None
