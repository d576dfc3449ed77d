"""Test-only hooks of the reliability tests, imported by their configs
(``custom_imports``) in every training process."""
import json
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from mmdyt.models.layers import dispatcher


@HOOKS.register_module()
class LossRecorderHook(Hook):
    """Appends each training iteration's losses of this rank to
    ``work_dir/losses_rank{rank}.jsonl`` (lines ``{"iter": 1, "loss": ...}``)."""

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        record = {
            k: float(torch.as_tensor(v).detach())
            for k, v in outputs.items() if k.startswith('loss')
        }
        record['iter'] = runner.iter + 1
        with open(osp.join(runner.work_dir, f'losses_rank{get_rank()}.jsonl'), 'a') as f:
            f.write(json.dumps(record) + '\n')


@HOOKS.register_module()
class NoGumbelNoiseHook(Hook):
    """Training dispatchers without Gumbel noise (``sigmoid(logits / tau)``,
    still hard-thresholded with the straight-through estimator), so that runs
    that split a batch differently over ranks see the same masks."""

    def before_run(self, runner):
        dispatcher.gumbel_sigmoid = lambda logits, tau: torch.sigmoid(logits / tau)


@HOOKS.register_module()
class PoisonWeightsHook(Hook):
    """Before training iteration ``at`` (1-based) fills the classification
    head's weights with NaN, so that this iteration's loss is NaN."""

    def __init__(self, at=2):
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.at:
            with torch.no_grad():
                getattr(runner.model, 'module', runner.model).head.fc.weight.fill_(float('nan'))
