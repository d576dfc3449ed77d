"""mmpretrain glue: classifiers registered in mmpretrain's ``MODELS``."""
from .dyt_classifier import DyTImageClassifier, linear_flops

__all__ = ['DyTImageClassifier', 'linear_flops']
