from .rate_loss import ActivationRateLoss, distillation_kl, global_mean

__all__ = ['ActivationRateLoss', 'distillation_kl', 'global_mean']
