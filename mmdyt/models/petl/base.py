"""The one wrapping style of the PETL modules."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class PETLLinear(nn.Linear):
    """An ``nn.Linear`` that takes over a pretrained layer's ``weight`` and
    ``bias`` (same parameter names, so ViT checkpoints load unchanged) and
    adds a PETL module whose parameters are the new, trainable ones.

    Subclasses implement :meth:`forward_unmerged` and :meth:`extra_flops`;
    mergeable ones (``mergeable = True``) also :meth:`_merge` /
    :meth:`_unmerge`, which fold the module into ``weight`` / ``bias`` and
    back, so a merged layer costs one linear.

    Args:
        base (nn.Linear): the pretrained layer (a plain ``nn.Linear``: two
            PETL modules on one layer are refused).
    """
    mergeable = False

    def __init__(self, base):
        if type(base) is not nn.Linear:
            raise ValueError(f'{type(self).__name__} wraps a plain nn.Linear, got '
                             f'{type(base).__name__} (two PETL modules on one layer '
                             'are not supported)')
        super().__init__(base.in_features, base.out_features, base.bias is not None,
                         device='meta')
        self.weight = base.weight
        self.bias = base.bias
        self.merged = False

    def forward(self, x):
        if self.merged:
            return F.linear(x, self.weight, self.bias)
        return self.forward_unmerged(x)

    def forward_unmerged(self, x):
        raise NotImplementedError

    @torch.no_grad()
    def merge(self):
        """Fold the PETL module into ``weight`` / ``bias``; the forward then
        costs one linear layer."""
        if not self.mergeable:
            raise TypeError(f'{type(self).__name__} cannot be merged into its linear layer')
        if not self.merged:
            self._merge()
            self.merged = True

    @torch.no_grad()
    def unmerge(self):
        """Undo :meth:`merge` (to float rounding)."""
        if self.merged:
            self._unmerge()
            self.merged = False

    def extra_flops(self, num_tokens):
        """Multiply-adds of the PETL module alone on ``num_tokens`` tokens."""
        raise NotImplementedError

    def flops(self, num_tokens):
        """Multiply-adds of the layer on ``num_tokens`` tokens: the linear,
        plus the PETL module unless merged."""
        base = num_tokens * self.in_features * self.out_features
        return base if self.merged else base + self.extra_flops(num_tokens)
