"""The one home of FLOPs counting (fvcore convention: one multiply-add is one
FLOP; biases, activations and softmax are free, an affine LayerNorm costs
five per element).

Every module of mmdyt that costs FLOPs answers ``flops(num_tokens)`` (per
sample; ``num_tokens`` an int or a (B,) tensor of tokens it ran on), built
from the helpers here; a backbone sums its modules' answers over the
:class:`~mmdyt.models.record.ForwardRecord` of a forward.
"""
import contextlib
import contextvars

import torch
import torch.nn as nn

LN_FLOPS_PER_ELEMENT = 5  # fvcore's count for an affine LayerNorm

#: 'mmdyt' (the default): attention matmuls and LayerNorms counted (17.58 G
#: for ViT-B/16 at 224). 'paper': the convention of the Dyn-Adapter paper's
#: tables (16.8 G), linear layers and the patch embedding only.
FLOPS_CONVENTIONS = ('mmdyt', 'paper')
_CONVENTION = contextvars.ContextVar('mmdyt_flops_convention', default='mmdyt')


@contextlib.contextmanager
def flops_convention(name):
    """Within the block, every ``flops()`` counts by convention ``name``
    (one of :data:`FLOPS_CONVENTIONS`)."""
    if name not in FLOPS_CONVENTIONS:
        raise ValueError(f'FLOPs convention must be one of {FLOPS_CONVENTIONS}, got {name!r}')
    token = _CONVENTION.set(name)
    try:
        yield
    finally:
        _CONVENTION.reset(token)


def attention_matmul_flops(num_queries, num_keys, embed_dims):
    """``q @ k^T`` and ``probs @ v`` of ``num_queries`` queries over
    ``num_keys`` keys, ``embed_dims`` wide over all heads (0 under the
    'paper' convention)."""
    if _CONVENTION.get() == 'paper':
        return 0
    return 2 * num_queries * num_keys * embed_dims


def attention_bias_flops(num_queries, num_keys, num_heads):
    """A bias (e.g. a relative position bias) added to every attention logit:
    one add per head, query and key (0 under the 'paper' convention)."""
    if _CONVENTION.get() == 'paper':
        return 0
    return num_queries * num_keys * num_heads


def elementwise_flops(num_tokens, embed_dims):
    """A per-channel scale (LayerScale) of ``num_tokens`` tokens: one multiply
    per element (0 under the 'paper' convention)."""
    if _CONVENTION.get() == 'paper':
        return 0
    return num_tokens * embed_dims


def layer_norm_flops(norm, num_tokens):
    """An affine LayerNorm (0 for anything else, e.g. ``nn.Identity``, and
    under the 'paper' convention) on ``num_tokens`` tokens."""
    if not isinstance(norm, nn.LayerNorm) or _CONVENTION.get() == 'paper':
        return 0
    return LN_FLOPS_PER_ELEMENT * norm.normalized_shape[0] * num_tokens


def linear_flops(layer, num_tokens):
    """A linear layer on ``num_tokens`` tokens: ``layer.flops`` where the
    layer has its own count (PETL layers add theirs to the base), else
    ``tokens x C_in x C_out``."""
    if hasattr(layer, 'flops'):
        return layer.flops(num_tokens)
    return num_tokens * layer.in_features * layer.out_features


def linear_layers_flops(module):
    """Every ``nn.Linear`` of ``module`` for one input vector (the
    per-sample cost of a classification head on a pooled feature)."""
    return sum(m.in_features * m.out_features for m in module.modules()
               if isinstance(m, nn.Linear))


def conv_patch_flops(conv, num_patches):
    """A patch-embedding convolution (kernel = stride) producing
    ``num_patches`` output positions."""
    return num_patches * conv.weight[0].numel() * conv.out_channels


def per_sample(value, rows, batch_size):
    """A per-sample count (int or (b,)) of the batch rows ``rows`` ((b,);
    None = all) -> (B,) float64 on the CPU, 0 for the other rows (samples
    that left at an early exit)."""
    value = torch.as_tensor(value, dtype=torch.float64)
    if rows is None:
        return value.expand(batch_size).clone()
    out = torch.zeros(batch_size, dtype=torch.float64)
    return out.index_copy_(0, rows.cpu(), value.expand(rows.shape[0]).clone())
