"""RepAdapter (Luo et al., 2023): a linear adapter before a projection that is
re-parameterised into it for inference (Dyn-Adapter paper Eq. 2-3)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


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


class RepAdapterLinear(nn.Linear):
    """``W0 (x + s * up(dropout(down(x)))) + b0``: an ``nn.Linear`` (the
    pretrained ``qkv`` or ``fc1``, same parameter names, so checkpoints load
    unchanged) with a RepAdapter on its input.

    ``down`` is ``Linear(C, d)``, ``up`` a :class:`GroupLinear` ``d -> C``
    initialised to zero, so training starts from the pretrained layer.
    :meth:`merge` folds the adapter into ``weight`` and ``bias`` (Eq. 2-3):
    ``W_ada = s W_u W_d``, ``b_ada = s (W_u b_d + b_u)``,
    ``W_rep = W0 (I + W_ada)``, ``b_rep = W0 b_ada + b0``.

    Args:
        base (nn.Linear): the pretrained layer whose parameters are reused.
        dim (int): adapter bottleneck d.
        groups (int): groups of the up projection.
        scale (float): s.
        dropout (float): dropout on the bottleneck.

    Shapes:
        x: (..., in_features) -> (..., out_features)
    """

    def __init__(self, base, dim=8, groups=2, scale=1.0, dropout=0.0):
        if type(base) is not nn.Linear:
            raise ValueError(f'RepAdapter wraps a plain nn.Linear, got {type(base).__name__} '
                             '(LoRA and RepAdapter on the same layer are not supported)')
        super().__init__(base.in_features, base.out_features, base.bias is not None)
        self.weight = base.weight
        self.bias = base.bias
        self.petl_down = nn.Linear(base.in_features, dim)
        self.petl_up = GroupLinear(dim, base.in_features, groups)
        self.petl_dropout = nn.Dropout(dropout)
        self.scale = scale
        self.merged = False
        nn.init.xavier_uniform_(self.petl_down.weight)
        nn.init.zeros_(self.petl_down.bias)

    def adapt(self, x):
        """``x + s * up(dropout(down(x)))``, shape kept."""
        return x + self.petl_up(self.petl_dropout(self.petl_down(x))) * self.scale

    def forward(self, x):
        if self.merged:
            return F.linear(x, self.weight, self.bias)
        return F.linear(self.adapt(x), self.weight, self.bias)

    @torch.no_grad()
    def merge(self):
        """Fold the adapter into ``weight`` / ``bias`` (irreversible); the
        forward then costs one linear layer."""
        if self.merged:
            return
        up = self.petl_up.dense_weight()
        w_ada = up @ self.petl_down.weight * self.scale
        b_ada = (up @ self.petl_down.bias + self.petl_up.bias) * self.scale
        w0 = self.weight.clone()
        self.weight.add_(w0 @ w_ada)
        if self.bias is None:
            self.bias = nn.Parameter(w0 @ b_ada, requires_grad=False)
        else:
            self.bias.add_(w0 @ b_ada)
        self.merged = True

    def flops(self, num_tokens):
        """Multiply-adds of the adapter alone (zero once merged)."""
        if self.merged:
            return 0
        return num_tokens * self.in_features * self.petl_down.out_features + \
            self.petl_up.flops(num_tokens)

