from .efficiency import EfficiencyMetric

__all__ = ["EfficiencyMetric"]
