"""Toolbox-neutral hooks, registered in mmengine's root ``HOOKS``."""
from .activation_logger import ActivationLoggerHook
from .exit_calibration import ExitCalibrationHook
from .gradient_mask import GradientMaskHook
from .label_range import LabelRangeHook
from .loss_priority import LossPriorityHook
from .merge_petl import MergePETLHook
from .nan_guard import NaNGuardHook
from .resume import ResumeHook
from .rng_state import RNGStateHook
from .temperature import TAU_POLICIES, TemperatureScheduleHook, scheduled_tau

__all__ = ['ActivationLoggerHook', 'TemperatureScheduleHook', 'scheduled_tau',
           'TAU_POLICIES', 'GradientMaskHook', 'LossPriorityHook',
           'NaNGuardHook', 'ResumeHook', 'RNGStateHook', 'MergePETLHook',
           'ExitCalibrationHook', 'LabelRangeHook']
