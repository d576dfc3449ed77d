from .early_exit import EarlyExitMetric
from .efficiency import EfficiencyMetric

__all__ = ['EarlyExitMetric', 'EfficiencyMetric']
