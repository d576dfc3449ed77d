import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from mmdyt.models.flops import LN_FLOPS_PER_ELEMENT
from mmdyt.models.layers import CrossAttentionQuery


def torch_reference(layer):
    """nn.MultiheadAttention holding the layer's weights."""
    dims = layer.embed_dims
    reference = nn.MultiheadAttention(dims, layer.num_heads, batch_first=True)
    reference.in_proj_weight.data = torch.cat([layer.q.weight, layer.kv.weight])
    reference.in_proj_bias.data = torch.cat([layer.q.bias, layer.kv.bias])
    reference.out_proj.load_state_dict(layer.proj.state_dict())
    return reference


def test_matches_torch_multihead_attention():
    torch.manual_seed(0)
    layer = CrossAttentionQuery(48, num_heads=3)
    tokens = torch.randn(2, 20, 48)
    query = layer.norm_q(layer.query).expand(2, -1, -1)
    keys = layer.norm_kv(tokens)
    expected = layer.query + torch_reference(layer)(query, keys, keys, need_weights=False)[0]
    out = layer(tokens)
    assert out.shape == (2, 48)
    torch.testing.assert_close(out, expected.squeeze(1))
    # A set operation: the order of the tokens does not matter.
    torch.testing.assert_close(layer(tokens[:, torch.randperm(20)]), out)


def test_flops_match_torch_counter():
    """torch counts a multiply-add as 2 FLOPs and no LayerNorm; the explicit
    attention path (need_weights=True) shows it every matmul."""
    layer = CrossAttentionQuery(64, num_heads=4)
    query, keys = torch.randn(1, 1, 64), torch.randn(1, 37, 64)
    with FlopCounterMode(display=False) as counter:
        torch_reference(layer)(query, keys, keys, need_weights=True)
    layer_norms = LN_FLOPS_PER_ELEMENT * 64 * (1 + 37)
    assert layer.flops(37) == counter.get_total_flops() // 2 + layer_norms


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match='num_heads'):
        CrossAttentionQuery(48, num_heads=5)
    with pytest.raises(ValueError, match=r'tokens must be \(B, M, 48\)'):
        CrossAttentionQuery(48, num_heads=3)(torch.randn(2, 4, 5, 48))
