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
  It traces with torch.export (the token counts are data-dependent sizes)
  and refuses ``torch.jit.trace``, which would freeze one activation pattern.

Capacity mode (``capacity``, for static shapes) gathers a fixed number of
tokens per sample by gate logit and runs the masked form on them.

Which parts a block has, and which of them carry an adapter and a
dispatcher, is the parts table :data:`DISPATCH_TABLE`; :func:`build_parts`
builds a block's adapters and dispatchers from it.
"""
import math
from typing import NamedTuple, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.fx.experimental.symbolic_shapes import guard_or_false

from .adapter import Adapter, build_adapter
from .dispatcher import TokenDispatcher

#: Dispatch variant -> the parts of a block, in order, each
#: ``(name, has_adapter, has_dispatcher)``. 'attn' is the attention
#: sub-layer, 'mlp' the MLP (also AdaptFormer's adapter place), 'layer' both.
DISPATCH_TABLE = {
    'mlp': (('attn', False, False), ('mlp', True, True)),
    'attn': (('attn', True, True), ('mlp', False, False)),
    'attn_mlp': (('attn', True, True), ('mlp', True, True)),
    'layer': (('layer', True, True), ),
    None: (('attn', False, False), ('mlp', True, False)),
}

#: The parts whose update mixes tokens (attention): they run on each
#: sample's active tokens packed together (:class:`PackedTokens`).
TOKEN_MIXING_PARTS = ('attn', 'layer')


def build_parts(dispatch, embed_dims, adapter_dim, num_experts=1, adapter_scale=1.0,
                adapter_dropout=0.1, num_fixed_tokens=1, tau=5.0):
    """A block's parts of :data:`DISPATCH_TABLE` for ``dispatch``: their names
    (tuple), and ``nn.ModuleDict`` s of their adapters (none when
    ``adapter_dim`` is None) and dispatchers, keyed by part."""
    if dispatch not in DISPATCH_TABLE:
        raise ValueError(f'dispatch must be one of {tuple(DISPATCH_TABLE)}, got {dispatch!r}')
    parts = DISPATCH_TABLE[dispatch]
    adapters = nn.ModuleDict({
        name: build_adapter(embed_dims, adapter_dim, num_experts, adapter_scale,
                            adapter_dropout)
        for name, adapted, _ in parts if adapted
    } if adapter_dim is not None else {})
    dispatchers = nn.ModuleDict({
        name: TokenDispatcher(embed_dims, num_fixed_tokens, tau)
        for name, _, dispatched in parts if dispatched
    })
    return tuple(name for name, _, _ in parts), adapters, dispatchers


class PartOutcome(NamedTuple):
    """What a dispatched part did in one forward.

    Attributes:
        mask (Tensor): (B, N) mask, 1 / True = active.
        capacity (int | None): tokens per sample computed in capacity mode.
        overflow (Tensor | None): (B,) active tokens capacity mode left out.
    """
    mask: Tensor
    capacity: Optional[int] = None
    overflow: Optional[Tensor] = None


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
        may_be_empty (bool): no token is always active (no class token), so
            the whole batch may have none: :meth:`to_padded` then gathers
            from an appended zero row instead of an empty tensor.

    Attributes:
        num_tokens (int): N.
        max_count (int): K_max, the largest per-sample count of active tokens,
            at least 2.
        flat_index (Tensor): (S,) rows of the (B * N, C) view that are active.
        padded_index (Tensor): (S,) rows of a (B * K_max, C) padded view where
            each active token goes, samples packed to the left.
        gather_index (Tensor): (B * K_max,) packed row each padded row takes:
            its token, or for padding the sample's last active token (a key
            :attr:`key_bias` hides, a query whose output is dropped).
        key_padding (Tensor): (B, 1, 1, K_max) bool, True for real keys.
    """

    def __init__(self, mask, flat_index=None, may_be_empty=False):
        batch_size = mask.shape[0]
        counts = mask.sum(1)
        # K_max, a data-dependent size under torch.export / dynamo; at least 2
        # (one padding slot at most), so the compiler knows it is not 1: inductor's
        # attention lowering cannot decide that of an unbacked size
        self.max_count = counts.max().clamp(min=2).item()
        torch._check(self.max_count > 1)
        self.batch_size = batch_size
        self.num_tokens = mask.shape[1]
        self.flat_index = (mask.flatten().nonzero().squeeze(1)
                           if flat_index is None else flat_index)
        slot = (mask.cumsum(1) - 1)[mask]
        sample = self.flat_index // mask.shape[1]
        self.padded_index = sample * self.max_count + slot
        offsets = counts.cumsum(0) - counts
        slots = torch.arange(self.max_count, device=mask.device)
        self.gather_index = torch.minimum(offsets[:, None] + slots,
                                          (offsets + counts - 1).clamp(min=0)[:, None]).flatten()
        self.key_padding = (slots < counts[:, None])[:, None, None, :]
        self.may_be_empty = may_be_empty

    def key_bias(self, dtype):
        """(B, 1, K_max, K_max) additive attention mask of ``dtype`` (an
        expanded view, the shape scaled_dot_product_attention traces with):
        0 for real keys, -inf for padding."""
        bias = torch.zeros(self.key_padding.shape, dtype=dtype, device=self.key_padding.device)
        return bias.masked_fill_(~self.key_padding, float('-inf')).expand(
            -1, -1, self.max_count, -1)

    def positions(self):
        """(B, K_max) position in the N-token sequence of each padded slot
        (padding repeats its sample's last active token)."""
        return (self.flat_index % self.num_tokens).index_select(0, self.gather_index).view(
            self.batch_size, self.max_count)

    def to_padded(self, tokens):
        """(S, D) packed tokens -> (B, K_max, D), padding rows copies of real
        ones (finite where the sample's tokens are; a zero row for a batch
        without any with ``may_be_empty``)."""
        if self.may_be_empty:
            tokens = torch.cat([tokens, tokens.new_zeros(1, tokens.shape[-1])])
        return tokens.index_select(0, self.gather_index).view(self.batch_size, self.max_count, -1)

    def from_padded(self, padded):
        """(B, K_max, D) -> (S, D) packed tokens."""
        return padded.reshape(-1, padded.shape[-1]).index_select(0, self.padded_index)


def with_adapter(x, adapter, offset=None):
    """``x + adapter(x) + offset`` as a new contiguous (B, N, C) tensor, the
    (B, 1, 1) ``offset`` (None = 0) added to each sample's tokens. A plain
    adapter in eval mode is fused into the residual: one ``addmm`` adds its
    up projection to ``x``, one add its bias and the offset."""
    if adapter is None:
        return x.clone() if offset is None else x + offset
    if type(adapter) is not Adapter or adapter.training:
        out = x + adapter(x)
        return out if offset is None else out.add_(offset)
    flat = x.reshape(-1, x.shape[-1])
    hidden = F.relu(adapter.down(flat), inplace=True)
    out = torch.addmm(flat, hidden, adapter.up.weight.t(), alpha=adapter.scale).view_as(x)
    bias = adapter.up.bias * adapter.scale
    return out.add_(bias if offset is None else bias + offset)


def dispatched_part(x, delta, dispatcher=None, adapter=None, skip_inactive=False,
                    pack=False, drop_path_rate=0.0, training=False, capacity=None):
    """One part of a block: ``x + M * delta(x) + adapter(x)``.

    Args:
        x (Tensor): (B, N, C) tokens, contiguous.
        delta (callable): the part's update, called as
            ``delta(tokens, key_mask=None, packed=None, positions=None)``: on
            all (B, N, C) tokens (masked path with ``key_mask`` the (B, N)
            float mask, or every token active), on the (S, C) active tokens
            with their :class:`PackedTokens` (``pack=True``) or None, or in
            capacity mode on (B, k, C) gathered tokens with their (B, k)
            ``positions`` in the sequence and ``key_mask``.
        dispatcher (TokenDispatcher | None): None runs the part on every
            token (no mask).
        adapter (nn.Module | None): runs on every token.
        skip_inactive (bool): skipping path (evaluation); else masked.
        pack (bool): whether ``delta`` mixes tokens and needs the packing.
        drop_path_rate (float): stochastic depth of ``delta``'s output.
        training (bool): whether stochastic depth is active.
        capacity (float | None): in (0, 1]; with ``skip_inactive``, capacity
            mode instead of skipping (see :func:`_capacity`).

    Returns:
        tuple: (B, N, C) tokens and the part's :class:`PartOutcome` (None
        without a dispatcher).
    """
    if dispatcher is None:
        out = x + drop_path(delta(x), drop_path_rate, training)
        return (out + adapter(x) if adapter is not None else out), None
    if skip_inactive and not x.is_meta:  # meta tensors have no mask to skip by: shapes only
        mask, logits = dispatcher(x, return_logits=True)
        if capacity is not None:
            return _capacity(x, mask, logits, dispatcher.num_fixed_tokens, delta, adapter,
                             capacity)
        return _skip(x, mask, logits, delta, adapter, pack,
                     dispatcher.num_fixed_tokens), PartOutcome(mask)
    mask = dispatcher(x)
    update = adapter(x) if adapter is not None else 0
    weight = mask.to(x.dtype)
    out = delta(x, key_mask=weight) * weight[..., None]
    return x + drop_path(out, drop_path_rate, training) + update, PartOutcome(mask)


#: Why the skipping path refuses to be traced.
TRACE_ERROR = (
    'the skipping path (skip_inactive=True) cannot be traced: torch.jit.trace and '
    'torch.onnx.export(dynamo=False) freeze the activation pattern of the example input and '
    'give wrong results on other inputs. Export the masked path (skip_inactive=False, '
    'export_onnx.py --masked), capacity mode (capacity=...), or use '
    'tools/deployment/export_onnx.py, which keeps the skipping (torch.export)')


def _rows(x, index):
    """Rows ``index`` (S,) of the flat (B * N, C) view of ``x`` -> (S, C)."""
    return x.reshape(-1, x.shape[-1]).index_select(0, index)


def _add_rows(out, index, values):
    """``out`` (B, N, C), in place: ``values`` (S, C) added to the rows
    ``index`` (S,) of its flat view. Under autocast the two may differ in
    dtype (a MoE adapter's float32 sum, a bfloat16 part): ``values`` take
    ``out``'s."""
    out.view(-1, out.shape[-1]).index_add_(0, index, values.to(out.dtype))
    return out


def _skip(x, mask, logits, delta, adapter, pack, num_fixed=1):
    """Skipping path: every token gets ``x + adapter(x)``, only the active
    ones ``delta`` (run densely, without gather or scatter, when every token
    is active). Under torch.export the number of active tokens is a
    data-dependent size and the general path is taken.

    A part that mixes tokens (``pack``) gives NaN to every token of a sample
    holding a NaN / inf token, as the masked path does (an inactive key
    still enters its softmax, and ``0 * NaN`` is NaN), so the paths agree.
    The (B, N) gate ``logits`` tell: a token holding a NaN / inf gets a NaN
    or inf logit, ``logit * 0`` is NaN then and 0 otherwise (None: every
    token is active, nothing to spread)."""
    if torch.jit.is_tracing():
        raise RuntimeError(TRACE_ERROR)
    index = mask.flatten().nonzero().squeeze(1)
    if guard_or_false(index.numel() == mask.numel()):
        return with_adapter(x, adapter).add_(delta(x))
    spread = None
    if pack and logits is not None:
        spread = (logits * 0).sum(1).view(-1, 1, 1)  # 0, or NaN for a NaN / inf token
    out = with_adapter(x, adapter, spread)
    packed = PackedTokens(mask, index, may_be_empty=num_fixed == 0) if pack else None
    return _add_rows(out, index, delta(_rows(x, index), packed=packed))


def capacity_tokens(capacity, num_tokens):
    """Tokens a sample computes in capacity mode: ``ceil(capacity * N)``."""
    if isinstance(capacity, bool) or not isinstance(capacity, (int, float)) or \
            not 0 < capacity <= 1:
        raise ValueError(f'capacity must be a number in (0, 1], got {capacity!r}')
    return min(num_tokens, math.ceil(capacity * num_tokens))


def _capacity(x, mask, logits, num_fixed, delta, adapter, capacity):
    """Capacity mode, static shapes: each sample's ``k = ceil(capacity * N)``
    tokens of highest gate ``logits`` (B, N) (the ``num_fixed`` leading
    tokens first) run ``delta`` in its masked form, the threshold ``mask``
    zeroing (and hiding as keys) the inactive ones among them. Equal to
    :func:`_skip` whenever no sample has more than ``k`` active tokens.

    Returns:
        tuple: (B, N, C) tokens and the :class:`PartOutcome` with ``k`` and
        the (B,) active tokens left out.
    """
    batch_size, num_tokens, dims = x.shape
    k = capacity_tokens(capacity, num_tokens)
    if logits is None:  # every token active: rank them in order
        logits = -torch.arange(num_tokens, dtype=x.dtype, device=x.device).expand(batch_size, -1)
    scores = torch.cat([logits.new_full((batch_size, num_fixed), float('inf')),
                        logits[:, num_fixed:]], 1)
    chosen = scores.topk(k, dim=1).indices
    kept = mask.gather(1, chosen)
    index = (chosen + torch.arange(batch_size, device=x.device)[:, None] * num_tokens).flatten()
    weight = kept.to(x.dtype)
    update = delta(_rows(x, index).view(batch_size, k, dims), key_mask=weight, positions=chosen)
    update = torch.where(kept[..., None], update, 0).view(-1, dims)
    out = _add_rows(with_adapter(x, adapter), index, update)
    return out, PartOutcome(mask, k, mask.sum(1) - kept.sum(1))
