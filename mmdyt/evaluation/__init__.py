from .early_exit import EarlyExitMetric
from .efficiency import EfficiencyMetric
from .subset_accuracy import SubsetAccuracy

__all__ = ['EarlyExitMetric', 'EfficiencyMetric', 'SubsetAccuracy']
