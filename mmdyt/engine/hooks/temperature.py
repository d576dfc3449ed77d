"""Temperature schedule of the token dispatchers (DyT Table 14)."""
import math

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...models.task_model import find_dyt_backbone

TAU_POLICIES = ('constant', 'linear', 'cosine')


def scheduled_tau(policy, tau_start, tau_end, progress):
    """Temperature at ``progress`` in [0, 1] of the schedule.

    'constant': ``tau_start``; 'linear': straight line to ``tau_end``;
    'cosine': ``tau_end + (tau_start - tau_end) * (1 + cos(pi * progress)) / 2``.
    """
    progress = min(max(progress, 0.0), 1.0)
    if policy == 'constant':
        return tau_start
    if policy == 'linear':
        return tau_start + (tau_end - tau_start) * progress
    return tau_end + (tau_start - tau_end) * (1 + math.cos(math.pi * progress)) / 2


@HOOKS.register_module()
class TemperatureScheduleHook(Hook):
    """Sets the Gumbel-sigmoid temperature of every dispatcher before each
    training iteration (or epoch), e.g. 5 -> 0.1 as in DyT Table 14.

    The current value is logged as ``tau``.

    Args:
        tau_start (float): temperature at the start of training.
        tau_end (float): temperature at the end (unused by 'constant').
        policy (str): 'constant', 'linear' or 'cosine'.
        by_epoch (bool): step once per epoch (progress ``epoch / max_epochs``)
            instead of once per iteration (``iter / max_iters``).
    """
    priority = 'NORMAL'

    def __init__(self, tau_start=5.0, tau_end=0.1, policy='cosine', by_epoch=False):
        if policy not in TAU_POLICIES:
            raise ValueError(f'policy must be one of {TAU_POLICIES}, got {policy!r}')
        if not (tau_start > 0 and tau_end > 0):
            raise ValueError(f'tau_start and tau_end must be > 0, got {tau_start}, {tau_end}')
        self.tau_start = tau_start
        self.tau_end = tau_end
        self.policy = policy
        self.by_epoch = by_epoch
        self.dispatchers = []

    def before_train(self, runner):
        backbone = find_dyt_backbone(runner.model)
        self.dispatchers = backbone.dispatchers() if backbone is not None else []
        if not self.dispatchers:
            raise ValueError('TemperatureScheduleHook needs a DyTVisionTransformer '
                             'with token dispatchers in the model')

    def tau_at(self, runner):
        """Temperature for the runner's current iteration / epoch."""
        if self.by_epoch:
            progress = runner.epoch / max(runner.max_epochs, 1)
        else:
            progress = runner.iter / max(runner.max_iters, 1)
        return scheduled_tau(self.policy, self.tau_start, self.tau_end, progress)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        tau = self.tau_at(runner)
        for dispatcher in self.dispatchers:
            dispatcher.tau = tau
        runner.message_hub.update_scalar('train/tau', tau)
