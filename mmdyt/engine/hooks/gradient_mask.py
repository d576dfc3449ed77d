"""Random gradient masks (Dyn-Adapter Sec. 3.3, Eq. 8, backward
sparsification): ``Delta w = alpha * dL/dw * M`` with ``M ~ Bernoulli(1 -
p_m)`` drawn anew for every optimizer step, on the trainable parameters. The
entries with ``M = 0`` are not updated: their gradient is zeroed and the
optimizer step leaves them (and their optimizer state) as they were, so
neither weight decay nor momentum moves them."""
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def _optimizers(optim_wrapper):
    """The ``torch.optim`` optimizers of an (mmengine) optimizer wrapper, an
    ``OptimWrapperDict`` or None."""
    if optim_wrapper is None:
        return []
    wrappers = getattr(optim_wrapper, 'optim_wrappers', None)
    wrappers = list(wrappers.values()) if wrappers is not None else [optim_wrapper]
    return [wrapper.optimizer for wrapper in wrappers]


@HOOKS.register_module()
class GradientMaskHook(Hook):
    """Masks the update of every trainable parameter with a random mask per
    optimizer step.

    ``before_train`` installs a gradient hook on each parameter (mmengine has
    no after-backward hook point), which draws the parameter's mask at the
    first backward of a step (the same mask for every backward of an
    accumulated step) and zeroes the gradient where ``M = 0``, without
    rescaling (Eq. 8); and step hooks on the runner's optimizers, which put
    back the masked entries of the parameter and of its optimizer state
    (AdamW's moments, SGD's momentum) after the step. ``after_train`` removes
    them all. With DDP each rank masks its own gradient before the
    all-reduce; the restored entries are those of the rank's own mask.

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
        self.pending = {}  # parameter -> (same shape) bool, True = updated

    def draw(self, param):
        """The parameter's mask of this step (True = updated), drawn at its
        first backward of the step."""
        if param not in self.pending:
            self.pending[param] = torch.rand_like(param, dtype=torch.float) >= self.mask_prob
        return self.pending[param]

    def masked_parameters(self, model):
        return [(name, param) for name, param in model.named_parameters()
                if param.requires_grad and (self.keys is None or
                                            any(key in name for key in self.keys))]

    def before_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        params = self.masked_parameters(model)
        if not params:
            raise ValueError(f'GradientMaskHook: no trainable parameter matches keys={self.keys}')
        self.handles = [param.register_hook(lambda grad, p=param: grad * self.draw(p))
                        for _, param in params]
        for optimizer in _optimizers(getattr(runner, 'optim_wrapper', None)):
            saved = {}
            self.handles.append(optimizer.register_step_pre_hook(
                lambda opt, args, kwargs, saved=saved: self._save(opt, saved)))
            self.handles.append(optimizer.register_step_post_hook(
                lambda opt, args, kwargs, saved=saved: self._restore(opt, saved)))

    def _save(self, optimizer, saved):
        """Before the step: the masked entries of each parameter with a mask
        and of its optimizer state tensors (None for state not created yet)."""
        saved.clear()
        for group in optimizer.param_groups:
            for param in group['params']:
                if param not in self.pending:
                    continue
                frozen = ~self.pending[param]
                state = {key: value[frozen].clone()
                         for key, value in optimizer.state.get(param, {}).items()
                         if torch.is_tensor(value) and value.shape == param.shape}
                saved[param] = (frozen, param.detach()[frozen].clone(), state)

    @torch.no_grad()
    def _restore(self, optimizer, saved):
        """After the step: the masked entries as they were; state the step
        created starts from zero there, as if never updated."""
        for param, (frozen, values, state) in saved.items():
            param[frozen] = values
            for key, value in optimizer.state.get(param, {}).items():
                if torch.is_tensor(value) and value.shape == param.shape:
                    value[frozen] = state[key] if key in state else 0
            del self.pending[param]
        saved.clear()

    def after_train(self, runner):
        for handle in self.handles:
            handle.remove()
        self.handles = []
        self.pending = {}
