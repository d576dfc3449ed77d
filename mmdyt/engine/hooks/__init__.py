"""Toolbox-neutral hooks, registered in mmengine's root ``HOOKS``."""
from .activation_logger import ActivationLoggerHook
from .temperature import TAU_POLICIES, TemperatureScheduleHook, scheduled_tau

__all__ = ['ActivationLoggerHook', 'TemperatureScheduleHook', 'scheduled_tau',
           'TAU_POLICIES']
