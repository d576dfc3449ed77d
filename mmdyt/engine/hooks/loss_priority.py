"""Adaptive prioritization of the early-exit loss weights (Dyn-Adapter
Sec. 3.2 and 4): lambda_deep starts high and falls, lambda_shallow starts
low and rises, and both end at the same value, so that
``sup(lambda_shallow) = inf(lambda_deep)`` (0.5 in the paper)."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from .temperature import TAU_POLICIES, scheduled_tau


def early_exit_model(runner, hook_name):
    """The runner's model (unwrapped), checked to have early exits."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if not all(hasattr(model, a) for a in ('set_loss_weights', 'num_exits',
                                           'num_shallow_stages')):
        raise ValueError(f'{hook_name} needs an early-exit model (EarlyExitClassifier), '
                         f'got {type(model).__name__}')
    return model


@HOOKS.register_module()
class LossPriorityHook(Hook):
    """Schedules ``lambda`` of the shallow exits (the model's first
    ``num_shallow_stages``) and of the deep ones before each training
    iteration (or epoch), and logs them as ``lambda_shallow`` /
    ``lambda_deep``.

    Args:
        shallow_start (float): lambda_shallow at the start; it rises to
            ``meet``.
        deep_start (float): lambda_deep at the start; it falls to ``meet``.
        meet (float): where both end: sup(lambda_shallow) = inf(lambda_deep).
        policy (str): schedule shape, 'linear', 'cosine' or 'constant' (no
            prioritization: the start values throughout).
        by_epoch (bool): progress ``epoch / max_epochs`` instead of
            ``iter / max_iters``.
    """
    priority = 'NORMAL'

    def __init__(self, shallow_start=0.1, deep_start=1.0, meet=0.5, policy='cosine',
                 by_epoch=False):
        if policy not in TAU_POLICIES:
            raise ValueError(f'policy must be one of {TAU_POLICIES}, got {policy!r}')
        if not 0 <= shallow_start <= meet <= deep_start:
            raise ValueError('need 0 <= shallow_start <= meet <= deep_start, got '
                             f'{shallow_start}, {meet}, {deep_start}')
        self.shallow_start = shallow_start
        self.deep_start = deep_start
        self.meet = meet
        self.policy = policy
        self.by_epoch = by_epoch

    def weights_at(self, progress):
        """(lambda_shallow, lambda_deep) at ``progress`` in [0, 1]."""
        return (scheduled_tau(self.policy, self.shallow_start, self.meet, progress),
                scheduled_tau(self.policy, self.deep_start, self.meet, progress))

    def before_train(self, runner):
        early_exit_model(runner, type(self).__name__)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.by_epoch:
            progress = runner.epoch / max(runner.max_epochs, 1)
        else:
            progress = runner.iter / max(runner.max_iters, 1)
        shallow, deep = self.weights_at(progress)
        model = early_exit_model(runner, type(self).__name__)
        model.set_loss_weights([shallow if j < model.num_shallow_stages else deep
                                for j in range(model.num_exits)])
        runner.message_hub.update_scalar('train/lambda_shallow', shallow)
        runner.message_hub.update_scalar('train/lambda_deep', deep)
