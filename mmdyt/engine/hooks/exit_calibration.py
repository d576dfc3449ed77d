"""Dyn-Adapter budget configs: calibrate exit thresholds before testing."""
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ...models.petl import merge_petl
from ..exit_calibration import CALIBRATION_MODES, calibrate_model_exits, format_exit_table


@HOOKS.register_module()
class ExitCalibrationHook(Hook):
    """Before ``runner.test()``, set the exit thresholds of an early-exit
    classifier so that its mean FLOPs on the validation split stay within
    ``budget`` x the full-depth backbone (LoRA / RepAdapter merged first, as
    deployed), then test with them. What ``tools/analysis_tools/
    calibrate_exits.py`` does offline, for configs that name a budget.

    Args:
        budget (float | None): fraction of the backbone FLOPs, in (0, 1].
            None reads the config's top-level ``exit_budget`` (the Dyn-Adapter
            base configs carry this hook, and a budget config only sets
            ``exit_budget = 0.5``); without either the thresholds of the
            config are kept.
        mode (str): 'per_exit' (one threshold per early exit, greedy
            search) or 'shared' (one threshold for all early exits); see
            :mod:`mmdyt.engine.exit_calibration`.
    """
    priority = 'LOW'

    def __init__(self, budget=None, mode='per_exit'):
        if budget is not None and not 0 < budget <= 1:
            raise ValueError(f'budget must be in (0, 1], got {budget}')
        if mode not in CALIBRATION_MODES:
            raise ValueError(f'mode must be one of {CALIBRATION_MODES}, got {mode!r}')
        self.budget = budget
        self.mode = mode

    def before_test(self, runner):
        budget = self.budget if self.budget is not None else runner.cfg.get('exit_budget')
        if budget is None:
            return
        if not 0 < budget <= 1:
            raise ValueError(f'exit_budget must be in (0, 1], got {budget}')
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'run_exits'):
            raise ValueError(f'ExitCalibrationHook needs an early-exit classifier, '
                             f'got {type(model).__name__}')
        merge_petl(model)
        model.eval()
        thresholds, stats = calibrate_model_exits(model, runner.val_dataloader, budget,
                                                  self.mode)
        model.thresholds = thresholds
        print_log(f'ExitCalibrationHook ({self.mode}): thresholds '
                  f'{[round(t, 4) for t in thresholds]} for {budget:.0%} of the backbone '
                  f'FLOPs: on val {stats["accuracy"]:.2f} % top-1 at '
                  f'{stats["flops"] / stats["backbone_flops"]:.1%}, exits {stats["histogram"]}\n'
                  + format_exit_table(stats['per_exit']), logger='current')
