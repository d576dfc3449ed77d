"""The dispatched part: gate -> run a part on the active tokens -> scatter
back, the adapter on every token (DyT Eq. 5-6).

Any block uses it for each of its parts (the ViT block's attention, MLP or
whole layer; a Swin or token-merging block alike): it passes the part as a
``delta`` function and gets back the updated tokens and the mask.

Two paths, identical in evaluation:

* masked (training): every token runs the part, its output is multiplied by
  the mask M (attention parts also drop the inactive keys from the softmax
  through ``key_mask``);
* skipping (inference): the active tokens are gathered from a flat
  ``(B * N, C)`` view with ``index_select``, only they run the part, and the
  results are added back with ``index_add_``. Parts that mix tokens
  (attention) get the active tokens packed per sample (:class:`PackedTokens`).
"""
import torch
import torch.nn.functional as F

from .adapter import Adapter


def drop_path(x, rate, training):
    """Stochastic depth on the sample dimension of (B, ..., C) tensors."""
    if rate == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - rate)
    return x * keep / (1 - rate)


class PackedTokens:
    """Index bookkeeping for running a part on each sample's active tokens.

    Args:
        mask (Tensor): (B, N) bool, True = active.
        flat_index (Tensor, optional): ``mask.flatten().nonzero().squeeze(1)``
            when the caller has it already.

    Attributes:
        flat_index (Tensor): (S,) rows of the (B * N, C) view that are active.
        padded_index (Tensor): (S,) rows of a (B * K_max, C) padded view where
            each active token goes, samples packed to the left.
        key_padding (Tensor): (B, 1, 1, K_max) bool, True for real keys.
    """

    def __init__(self, mask, flat_index=None):
        batch_size = mask.shape[0]
        counts = mask.sum(1)
        self.max_count = int(counts.max())
        self.batch_size = batch_size
        self.flat_index = (mask.flatten().nonzero().squeeze(1)
                           if flat_index is None else flat_index)
        slot = (mask.cumsum(1) - 1)[mask]
        sample = self.flat_index // mask.shape[1]
        self.padded_index = sample * self.max_count + slot
        self.key_padding = (torch.arange(self.max_count, device=mask.device) <
                            counts[:, None])[:, None, None, :]

    def to_padded(self, tokens):
        """(S, D) packed tokens -> (B, K_max, D), zero padded."""
        padded = tokens.new_zeros(self.batch_size * self.max_count, tokens.shape[-1])
        padded.index_copy_(0, self.padded_index, tokens)
        return padded.view(self.batch_size, self.max_count, -1)

    def from_padded(self, padded):
        """(B, K_max, D) -> (S, D) packed tokens."""
        return padded.reshape(-1, padded.shape[-1]).index_select(0, self.padded_index)


def with_adapter(x, adapter):
    """``x + adapter(x)`` as a new contiguous (B, N, C) tensor. A plain
    adapter in eval mode is fused into the residual: one ``addmm`` adds its
    up projection to ``x``."""
    if adapter is None:
        return x.clone()
    if type(adapter) is not Adapter or adapter.training:
        return x + adapter(x)
    flat = x.reshape(-1, x.shape[-1])
    hidden = F.relu(adapter.down(flat), inplace=True)
    out = torch.addmm(flat, hidden, adapter.up.weight.t(), alpha=adapter.scale)
    return out.add_(adapter.up.bias, alpha=adapter.scale).view_as(x)


def dispatched_part(x, delta, dispatcher=None, adapter=None, skip_inactive=False,
                    pack=False, drop_path_rate=0.0, training=False):
    """One part of a block: ``x + M * delta(x) + adapter(x)``.

    Args:
        x (Tensor): (B, N, C) tokens, contiguous.
        delta (callable): the part's update, called as
            ``delta(tokens, key_mask=None, packed=None)``: on all (B, N, C)
            tokens (masked path with ``key_mask`` the (B, N) float mask, or
            every token active), or on the (S, C) active tokens with their
            :class:`PackedTokens` (``pack=True``) or None.
        dispatcher (TokenDispatcher | None): None runs the part on every
            token (no mask).
        adapter (nn.Module | None): runs on every token.
        skip_inactive (bool): skipping path (evaluation); else masked.
        pack (bool): whether ``delta`` mixes tokens and needs the packing.
        drop_path_rate (float): stochastic depth of ``delta``'s output.
        training (bool): whether stochastic depth is active.

    Returns:
        tuple: (B, N, C) tokens and the (B, N) mask (None without a
        dispatcher).
    """
    if dispatcher is None:
        out = x + drop_path(delta(x), drop_path_rate, training)
        return (out + adapter(x) if adapter is not None else out), None
    mask = dispatcher(x)
    if skip_inactive:
        return _skip(x, mask, delta, adapter, pack), mask
    update = adapter(x) if adapter is not None else 0
    weight = mask.to(x.dtype)
    out = delta(x, key_mask=weight) * weight[..., None]
    return x + drop_path(out, drop_path_rate, training) + update, mask


def _skip(x, mask, delta, adapter, pack):
    """Skipping path: every token gets ``x + adapter(x)``, only the active
    ones ``delta`` (run densely, without gather or scatter, when every token
    is active)."""
    out = with_adapter(x, adapter)
    index = mask.flatten().nonzero().squeeze(1)
    if index.numel() == mask.numel():
        return out.add_(delta(x))
    packed = PackedTokens(mask, index) if pack else None
    active = x.reshape(-1, x.shape[-1]).index_select(0, index)
    out.view(-1, x.shape[-1]).index_add_(0, index, delta(active, packed=packed))
    return out
