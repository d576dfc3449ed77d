"""Token dispatcher of Dynamic Tuning (paper Sec. 3.2, Eq. 3-5, App. A.1)."""
import contextlib

import torch
import torch.nn as nn


def gumbel_sigmoid(logits, tau):
    """``sigmoid((logits + g1 - g2) / tau)`` with ``g1, g2 ~ Gumbel(0, 1)``.

    Args:
        logits (Tensor): any shape.
        tau (float): temperature, > 0.

    Returns:
        Tensor: soft activation probabilities S, same shape as ``logits``.
    """
    g1 = -torch.empty_like(logits).exponential_().log()
    g2 = -torch.empty_like(logits).exponential_().log()
    return torch.sigmoid((logits + g1 - g2) / tau)


def straight_through(soft):
    """Hard mask ``soft >= 0.5`` in the forward pass (Eq. 4; the reference
    code skips ties, ``> 0.5``), gradient of ``soft`` in the backward pass
    (Eq. 5)."""
    hard = (soft >= 0.5).to(soft.dtype)
    return hard - soft.detach() + soft


class TokenDispatcher(nn.Module):
    """Decides per token whether it goes through a block.

    A gate ``Linear(C, 1)`` scores the tokens (initialised as the reference
    code: weight trunc-normal std 0.02, bias 0; the paper does not say).
    Training: Gumbel-sigmoid with a straight-through estimator; evaluation:
    ``sigmoid(logits) >= 0.5``, no noise (Eq. 4: a token exactly at 0.5 is
    active; the reference code skips it). The first ``num_fixed_tokens``
    tokens (class token, register and prompt tokens) are always active.

    Args:
        embed_dims (int): C.
        num_fixed_tokens (int): leading tokens that are never deactivated.
        tau (float): Gumbel-sigmoid temperature; a hook may change
            ``dispatcher.tau`` during training.

    Attributes:
        force_all_active (bool): every token active (a mask of ones), e.g.
            for the dense teacher of self-distillation
            (:func:`all_tokens_active`).

    Shapes:
        x: (B, N, C) -> mask (B, N), 1.0 = active. In training the mask is a
        float tensor carrying the gradient of S; in evaluation a bool tensor.
    """

    def __init__(self, embed_dims, num_fixed_tokens=1, tau=5.0):
        super().__init__()
        self.gate = nn.Linear(embed_dims, 1)
        nn.init.trunc_normal_(self.gate.weight, std=0.02)
        nn.init.zeros_(self.gate.bias)
        self.num_fixed_tokens = num_fixed_tokens
        self.tau = tau
        self.force_all_active = False

    @property
    def tau(self):
        return self._tau

    @tau.setter
    def tau(self, value):
        if not value > 0:
            raise ValueError(f'tau must be > 0, got {value}')
        self._tau = float(value)

    def forward(self, x, return_logits=False):
        """(B, N, C) -> (B, N) mask; with ``return_logits`` also the (B, N)
        gate logits of every token, the fixed ones' included (unused for
        their mask), or None under ``force_all_active``. The gate runs on
        all N tokens: slicing off the fixed ones would copy the input."""
        if self.force_all_active:
            ones = x.new_ones(x.shape[:2])
            mask = ones if self.training else ones.bool()
            return (mask, None) if return_logits else mask
        fixed = self.num_fixed_tokens
        logits = self.gate(x).squeeze(-1)
        patches = logits[:, fixed:]
        if self.training:
            patch_mask = straight_through(gumbel_sigmoid(patches, self.tau))
        else:
            patch_mask = patches >= 0  # sigmoid(logits) >= 0.5
        mask = torch.cat([patch_mask.new_ones(patch_mask.shape[0], fixed), patch_mask], 1)
        return (mask, logits) if return_logits else mask

    def flops(self, num_tokens):
        """Multiply-adds of the gate on the ``num_tokens`` tokens of a sample."""
        return num_tokens * self.gate.in_features


@contextlib.contextmanager
def all_tokens_active(dispatchers):
    """Within the block, each of ``dispatchers`` activates every token."""
    dispatchers = list(dispatchers)
    previous = [d.force_all_active for d in dispatchers]
    for dispatcher in dispatchers:
        dispatcher.force_all_active = True
    try:
        yield
    finally:
        for dispatcher, value in zip(dispatchers, previous):
            dispatcher.force_all_active = value
