"""What a resume needs beyond mmengine's: refusing an optimizer state the
config's optimizer cannot take, and continuing an epoch-based run inside the
epoch it was saved in.

mmengine 0.10.7 resumes an ``EpochBasedTrainLoop`` saved mid-epoch (a
checkpoint every N iterations) at the start of that epoch with the
iteration count of the checkpoint: the epoch's batches already trained are
trained again and the run does more iterations than planned.
:class:`ResumeHook` replays the data order instead: the resumed epoch's data
loader (the sampler seeded by the epoch, as in the run that saved) skips the
batches already trained, and the training continues with the next one.
:class:`~mmdyt.engine.hooks.RNGStateHook` puts the random states back right
after that skip, so the run continues exactly as an uninterrupted one.
"""
import logging

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

#: ``checkpoint['meta']`` keys written by :class:`ResumeHook`.
OPTIMIZER_KEY = 'optimizer_type'
EPOCH_LENGTH_KEY = 'epoch_length'


def _optimizers(optim_wrapper):
    """{name: torch optimizer} of an ``OptimWrapper`` (name None) or an
    ``OptimWrapperDict``."""
    if isinstance(optim_wrapper, OptimWrapperDict):
        return {name: wrapper.optimizer for name, wrapper in optim_wrapper.items()}
    return {None: optim_wrapper.optimizer}


def _settings_missing(optimizer, saved_groups):
    """Settings (``momentum`` ...) ``optimizer`` needs in its param groups
    that the saved ``param_groups`` lack even after its ``__setstate__``
    fills the defaults of newer torch versions; None when that cannot be
    told."""
    cls = type(optimizer)
    try:
        probe = cls.__new__(cls)
        cls.__setstate__(probe, dict(defaults=dict(optimizer.defaults), state={},
                                     param_groups=[dict(group) for group in saved_groups]))
        return sorted(set().union(*(set(optimizer.defaults) - set(group)
                                    for group in probe.param_groups)))
    except Exception:  # noqa: BLE001 - an optimizer of its own kind: no verdict
        return None


def check_optimizer_state(optim_wrapper, saved, saved_types, path):
    """Refuse to resume ``optim_wrapper`` from the optimizer state ``saved``
    (``checkpoint['optimizer']``) of another kind of optimizer.

    ``saved_types`` is the checkpoint's ``meta['optimizer_type']`` (a class
    name, or {name: class name} for an ``OptimWrapperDict``; None for
    checkpoints written without :class:`ResumeHook`, where the param group
    settings tell instead).

    Raises:
        ValueError: naming both optimizers (or the settings the config's
            lacks), the checkpoint, and the ways out.
    """
    optimizers = _optimizers(optim_wrapper)
    if not isinstance(saved_types, dict):
        saved_types = {None: saved_types}
    for name, optimizer in optimizers.items():
        state = saved.get(name, {}) if name is not None else saved
        groups = state.get('param_groups') if isinstance(state, dict) else None
        if not groups:
            continue
        current = type(optimizer).__name__
        recorded = saved_types.get(name)
        missing = _settings_missing(optimizer, groups)
        if recorded is not None and recorded != current:
            found = f'is of {recorded}'
        elif missing:
            found = (f'lacks the settings {missing} of {current} (its param groups hold '
                     f'{sorted(set(groups[0]) - {"params"})}: another optimizer)')
        else:
            continue
        key = 'optim_wrapper.optimizer' + (f' of {name!r}' if name is not None else '')
        raise ValueError(
            f'cannot resume from {path}: its optimizer state {found}, the config\'s '
            f'{key} is {current}; {current} cannot continue from it. To change the '
            f'optimizer, start from the checkpoint\'s weights with a fresh optimizer and '
            f'schedule: tools/train.py CONFIG --cfg-options load_from={path} (without '
            f'--resume); to resume, set {key}.type back'
            + (f' to {recorded}' if recorded else ''))


def _replay_epoch(loop, skip):
    """``EpochBasedTrainLoop.run_epoch`` of mmengine 0.10.7 for the epoch a
    run resumes in: the data loader skips the ``skip`` batches already
    trained, then runs ``loop.mmdyt_after_skip`` (e.g. the RNG states put
    back), then training goes on with batch index ``skip``."""
    del loop.run_epoch  # the class's own from the next epoch on
    runner = loop.runner
    runner.call_hook('before_train_epoch')
    runner.model.train()
    iterator = iter(loop.dataloader)
    print_log(f'resuming inside epoch {loop.epoch + 1}: skipping its {skip} batches already '
              'trained', logger='current')
    for _ in range(skip):
        try:
            next(iterator)
        except StopIteration:
            break
    for callback in loop.__dict__.pop('mmdyt_after_skip'):
        callback()
    for idx, data_batch in enumerate(iterator, skip):
        loop.run_iter(idx, data_batch)
    runner.call_hook('after_train_epoch')
    loop._epoch += 1


@HOOKS.register_module()
class ResumeHook(Hook):
    """Registered by :func:`mmdyt.engine.runner.build_runner`.

    * Saves the optimizer's class name (``meta['optimizer_type']``) and the
      batches per epoch (``meta['epoch_length']``) in every checkpoint.
    * On resume, refuses an optimizer state the config's optimizer cannot
      take (:func:`check_optimizer_state`), instead of mmengine loading it
      and the first step failing (``KeyError: 'momentum'`` after AdamW ->
      SGD) or, for optimizers with the same settings, silently training on.
    * Resuming an ``EpochBasedTrainLoop`` from a checkpoint saved inside an
      epoch, skips the batches of that epoch already trained (the data order
      replayed), so that the run does the planned iterations on the same
      data as an uninterrupted one.
    """
    priority = 'VERY_HIGH'

    def __init__(self):
        self._resumed_meta = None

    def before_save_checkpoint(self, runner, checkpoint):
        if isinstance(runner.optim_wrapper, OptimWrapper):  # built (training)
            optimizers = _optimizers(runner.optim_wrapper)
            checkpoint['meta'][OPTIMIZER_KEY] = (
                type(optimizers[None]).__name__ if None in optimizers else
                {name: type(optimizer).__name__ for name, optimizer in optimizers.items()})
        try:
            checkpoint['meta'][EPOCH_LENGTH_KEY] = len(runner.train_dataloader)
        except TypeError:  # an iterable dataset
            pass

    def after_load_checkpoint(self, runner, checkpoint):
        if not getattr(runner, '_resume', False):
            return  # load_from: the weights only
        meta = checkpoint.get('meta', {})
        self._resumed_meta = meta
        if 'optimizer' in checkpoint and isinstance(runner.optim_wrapper, OptimWrapper):
            check_optimizer_state(runner.optim_wrapper, checkpoint['optimizer'],
                                  meta.get(OPTIMIZER_KEY),
                                  runner.cfg.get('load_from') or 'the checkpoint')

    def before_train(self, runner):
        meta, self._resumed_meta = self._resumed_meta, None
        loop = runner.train_loop
        if meta is None or not isinstance(loop, EpochBasedTrainLoop):
            return
        try:
            length = len(loop.dataloader)
        except TypeError:
            return
        recorded = meta.get(EPOCH_LENGTH_KEY, length)
        skip = loop.iter - loop.epoch * recorded
        if skip <= 0 or skip > recorded:
            return
        if recorded != length:
            print_log(f'the checkpoint was saved with {recorded} batches per epoch, the data '
                      f'loader now has {length}: the resumed epoch skips {skip} batches, but '
                      'its data order is not the one of the run that saved',
                      logger='current', level=logging.WARNING)
        if type(loop).run_epoch is not EpochBasedTrainLoop.run_epoch or \
                'run_epoch' in loop.__dict__:
            print_log(f'{type(loop).__name__} has its own run_epoch: the resumed epoch '
                      f'{loop.epoch + 1} starts over, its first {skip} batches trained twice',
                      logger='current', level=logging.WARNING)
            return
        loop.mmdyt_after_skip = []
        loop.run_epoch = lambda: _replay_epoch(loop, skip)
