"""Stop training on a NaN or infinite loss, saying where and how."""
import math

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class NaNGuardHook(Hook):
    """Raises ``FloatingPointError`` after a training iteration whose losses
    (``loss`` and every ``loss_*`` term of the model's log) are not finite.

    The message names the iteration (1-based, as in the log), the epoch, the
    offending terms with their values and the per-layer activation rates of
    the dispatchers in that iteration's forward (an mmdyt model returns them
    with its losses: the hook turns its ``log_efficiency`` on), e.g. ``NaN/inf loss at
    iteration 3 (epoch 1): loss=nan, loss_rate=nan; last activation rates per
    layer: [0.51, 0.0, ...]``. Its priority is above :class:`CheckpointHook`'s,
    so the corrupted weights of that iteration are not saved.
    """
    priority = 'VERY_HIGH'

    def before_train(self, runner):
        """Have an mmdyt model return its activation rates with its losses
        (``log_efficiency``), so that the message can name them."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if hasattr(model, 'log_efficiency'):
            model.log_efficiency = True

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        losses = {k: float(torch.as_tensor(v).detach())
                  for k, v in (outputs or {}).items() if k.startswith('loss')}
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        if not bad:
            return
        terms = ', '.join(f'{k}={v}' for k, v in losses.items())
        rates = {int(k[len('rate_layer'):]): round(float(v), 4)
                 for k, v in (outputs or {}).items() if k.startswith('rate_layer')}
        rates = [rates[i] for i in sorted(rates)]
        rates = (f'last activation rates per layer: {rates}' if rates else
                 'no activation rates (not an mmdyt model with token dispatchers)')
        raise FloatingPointError(
            f'NaN/inf loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}): '
            f'{terms}; {rates}. Training stopped; lower the learning rate, enable '
            'gradient clipping (optim_wrapper.clip_grad) or check the data.')
