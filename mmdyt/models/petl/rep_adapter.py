"""RepAdapter (Luo et al., 2023): a linear adapter before a projection that is
re-parameterised into it for inference (Dyn-Adapter paper Eq. 2-3)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import PETLLinear


class GroupLinear(nn.Module):
    """Group-wise linear map (a grouped 1x1 convolution on tokens).

    The input features are split into ``groups`` chunks, each mapped by its
    own ``(in / groups) -> (out / groups)`` matrix.

    Args:
        in_features (int): d, divisible by ``groups``.
        out_features (int): C, divisible by ``groups``.
        groups (int): number of groups.

    Shapes:
        x: (..., in_features) -> (..., out_features)
    """

    def __init__(self, in_features, out_features, groups=2):
        super().__init__()
        if groups < 1 or in_features % groups or out_features % groups:
            raise ValueError(f'groups={groups} must divide both the adapter dim '
                             f'{in_features} and the embedding dim {out_features}')
        self.groups = groups
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(
            torch.zeros(groups, in_features // groups, out_features // groups))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        chunks = x.unflatten(-1, (self.groups, -1))
        out = torch.einsum('...gi,gio->...go', chunks, self.weight)
        return out.flatten(-2) + self.bias

    def dense_weight(self):
        """The equivalent block-diagonal ``(out_features, in_features)``
        weight of an ``nn.Linear``."""
        return torch.block_diag(*self.weight.transpose(1, 2))

    def flops(self, num_tokens):
        return num_tokens * self.in_features * self.out_features // self.groups


class RepAdapterLinear(PETLLinear):
    """``W0 (x + s * up(dropout(down(x)))) + b0``: the pretrained ``qkv`` or
    ``fc1`` with a RepAdapter on its input.

    ``down`` is ``Linear(C, d)``, ``up`` a :class:`GroupLinear` ``d -> C``
    initialised to zero, so training starts from the pretrained layer.
    :meth:`merge` folds the adapter into ``weight`` and ``bias`` (Eq. 2-3):
    ``W_ada = s W_u W_d``, ``b_ada = s (W_u b_d + b_u)``,
    ``W_rep = W0 (I + W_ada)``, ``b_rep = W0 b_ada + b0``; :meth:`unmerge`
    solves for ``W0`` and ``b0`` again.

    Args:
        base (nn.Linear): the pretrained layer whose parameters are reused.
        dim (int): adapter bottleneck d.
        groups (int): groups of the up projection.
        scale (float): s.
        dropout (float): dropout on the bottleneck.

    Shapes:
        x: (..., in_features) -> (..., out_features)
    """
    mergeable = True

    def __init__(self, base, dim=8, groups=2, scale=1.0, dropout=0.0):
        super().__init__(base)
        self.petl_down = nn.Linear(base.in_features, dim)
        self.petl_up = GroupLinear(dim, base.in_features, groups)
        self.petl_dropout = nn.Dropout(dropout)
        self.scale = scale
        nn.init.xavier_uniform_(self.petl_down.weight)
        nn.init.zeros_(self.petl_down.bias)

    def adapt(self, x):
        """``x + s * up(dropout(down(x)))``, shape kept."""
        return x + self.petl_up(self.petl_dropout(self.petl_down(x))) * self.scale

    def forward_unmerged(self, x):
        return F.linear(self.adapt(x), self.weight, self.bias)

    def _adapter_affine(self):
        """``(W_ada, b_ada)`` of the adapter as an affine map."""
        up = self.petl_up.dense_weight()
        return (up @ self.petl_down.weight * self.scale,
                (up @ self.petl_down.bias + self.petl_up.bias) * self.scale)

    def _merge(self):
        w_ada, b_ada = self._adapter_affine()
        w0 = self.weight.clone()
        self.weight.add_(w0 @ w_ada)
        if self.bias is None:
            self.bias = nn.Parameter(w0 @ b_ada, requires_grad=False)
            self._added_bias = True
        else:
            self.bias.add_(w0 @ b_ada)

    def _unmerge(self):
        w_ada, b_ada = self._adapter_affine()
        eye = torch.eye(w_ada.shape[0], dtype=w_ada.dtype, device=w_ada.device)
        w0 = torch.linalg.solve(eye + w_ada, self.weight, left=False)
        self.weight.copy_(w0)
        if getattr(self, '_added_bias', False):
            self.bias = None
            del self._added_bias
        else:
            self.bias.sub_(w0 @ b_ada)

    def extra_flops(self, num_tokens):
        return num_tokens * self.in_features * self.petl_down.out_features + \
            self.petl_up.flops(num_tokens)
