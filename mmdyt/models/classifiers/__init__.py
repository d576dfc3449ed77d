"""mmpretrain glue: classifiers registered in mmpretrain's ``MODELS``."""
from .dyt_classifier import DyTImageClassifier
from .early_exit import EarlyExitClassifier

__all__ = ['DyTImageClassifier', 'EarlyExitClassifier']
