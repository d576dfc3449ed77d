"""Random gradient masks (Dyn-Adapter Sec. 3.3, Eq. 8, backward
sparsification): ``grad <- grad * M`` with ``M ~ Bernoulli(1 - p_m)`` drawn
anew at every backward pass, on the trainable parameters."""
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class GradientMaskHook(Hook):
    """Installs a gradient hook on every trainable parameter in
    ``before_train`` (mmengine has no after-backward hook point) and removes
    it in ``after_train``. Each hook zeroes a random fraction ``mask_prob``
    of the entries of the parameter's gradient, without rescaling (Eq. 8).

    With DDP each rank masks its own gradient before the all-reduce.

    Args:
        mask_prob (float): p_m in [0, 1).
        keys (Sequence[str] | None): only parameters whose name contains one
            of these substrings (e.g. ``('backbone.',)`` for the PETL modules
            alone); None = every trainable parameter.
    """
    priority = 'NORMAL'

    def __init__(self, mask_prob=0.1, keys=None):
        if not 0 <= mask_prob < 1:
            raise ValueError(f'mask_prob must be in [0, 1), got {mask_prob}')
        self.mask_prob = mask_prob
        self.keys = None if keys is None else tuple(keys)
        self.handles = []

    def mask(self, grad):
        """``grad`` with each entry zeroed with probability ``mask_prob``."""
        return grad * (torch.rand_like(grad) >= self.mask_prob)

    def masked_parameters(self, model):
        return [(name, param) for name, param in model.named_parameters()
                if param.requires_grad and (self.keys is None or
                                            any(key in name for key in self.keys))]

    def before_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        params = self.masked_parameters(model)
        if not params:
            raise ValueError(f'GradientMaskHook: no trainable parameter matches keys={self.keys}')
        self.handles = [param.register_hook(self.mask) for _, param in params]

    def after_train(self, runner):
        for handle in self.handles:
            handle.remove()
        self.handles = []
