"""mmpretrain glue: classifiers registered in mmpretrain's ``MODELS``."""
from .dyt_classifier import DyTImageClassifier, linear_flops
from .early_exit import EarlyExitClassifier, EarlyExitMetric

__all__ = ['DyTImageClassifier', 'linear_flops', 'EarlyExitClassifier', 'EarlyExitMetric']
