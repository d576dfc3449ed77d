"""Activation-rate loss (DyT Eq. 8) and self-distillation."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_reduce, get_world_size
from mmengine.registry import MODELS


def global_mean(values):
    """Mean of ``values`` over every element on every rank.

    The forward value is the global mean; the gradient is that of the local
    mean, so that DDP's gradient averaging yields the gradient of the global
    mean. Shapes: any -> scalar.
    """
    local = values.float().mean()
    if get_world_size() == 1:
        return local
    total = torch.stack([values.float().sum().detach(),
                         values.new_tensor(values.numel(), dtype=torch.float)])
    all_reduce(total, op='sum')
    return local + (total[0] / total[1] - local).detach()


@MODELS.register_module()
class ActivationRateLoss(nn.Module):
    """``weight * (mean_{layers, batch, patch tokens} M - r) ** 2``.

    Args:
        target_rate (float): r in [0, 1].
        loss_weight (float): alpha, 2.0 in the paper.

    Shapes:
        masks: list of (B, N) straight-through masks; the first
        ``num_fixed_tokens`` columns (class / prompt tokens) are left out.
    """

    def __init__(self, target_rate=0.5, loss_weight=2.0):
        super().__init__()
        if not 0.0 <= target_rate <= 1.0:
            raise ValueError(f'target_rate (r) must be in [0, 1], got {target_rate}')
        self.target_rate = target_rate
        self.loss_weight = loss_weight

    def forward(self, masks, num_fixed_tokens=1):
        if not masks:
            raise ValueError('ActivationRateLoss needs the masks of a dispatching backbone; '
                             'the backbone has no dispatcher (dispatch=None)')
        rates = torch.cat([m[:, num_fixed_tokens:].flatten() for m in masks])
        return self.loss_weight * (global_mean(rates) - self.target_rate)**2


def distillation_kl(student_logits, teacher_logits):
    """KL(teacher || student) over classes, batch mean. Shapes: (B, K)."""
    return F.kl_div(student_logits.log_softmax(-1), teacher_logits.log_softmax(-1),
                    log_target=True, reduction='batchmean')
