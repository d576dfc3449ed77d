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
    """The reference code's form: separate k / v LayerNorms, no residual."""
    torch.manual_seed(0)
    layer = CrossAttentionQuery(48, num_heads=3)
    for norm in (layer.norm_k, layer.norm_v):  # distinct k and v norms
        nn.init.normal_(norm.weight)
        nn.init.normal_(norm.bias)
    tokens = torch.randn(2, 20, 48)
    query = layer.norm_q(layer.query).expand(2, -1, -1)
    expected = torch_reference(layer)(query, layer.norm_k(tokens), layer.norm_v(tokens),
                                      need_weights=False)[0]
    out = layer(tokens)
    assert out.shape == (2, 48)
    torch.testing.assert_close(out, expected.squeeze(1))
    # A set operation: the order of the tokens does not matter.
    torch.testing.assert_close(layer(tokens[:, torch.randperm(20)]), out)


def test_earlier_form_is_an_option():
    """residual=True, shared_kv_norm=True: q0 + MHA(LN_q(q0), LN_kv(x), LN_kv(x))."""
    torch.manual_seed(0)
    layer = CrossAttentionQuery(48, num_heads=3, residual=True, shared_kv_norm=True)
    assert not hasattr(layer, 'norm_k')
    tokens = torch.randn(2, 20, 48)
    query = layer.norm_q(layer.query).expand(2, -1, -1)
    keys = layer.norm_kv(tokens)
    expected = layer.query + torch_reference(layer)(query, keys, keys, need_weights=False)[0]
    torch.testing.assert_close(layer(tokens), expected.squeeze(1))


def test_checkpoints_load_into_their_own_form_only():
    torch.manual_seed(0)
    earlier = CrossAttentionQuery(48, num_heads=3, residual=True, shared_kv_norm=True)
    tokens = torch.randn(2, 20, 48)
    reloaded = CrossAttentionQuery(48, num_heads=3, residual=True, shared_kv_norm=True)
    reloaded.load_state_dict(earlier.state_dict())
    torch.testing.assert_close(reloaded(tokens), earlier(tokens), rtol=0, atol=0)
    wrapped = nn.ModuleDict(dict(head=CrossAttentionQuery(48, num_heads=3)))
    with pytest.raises(ValueError, match=r'head: the checkpoint has one LayerNorm shared by '
                                         r'k and v.*residual=True, shared_kv_norm=True'):
        wrapped.load_state_dict({f'head.{k}': v for k, v in earlier.state_dict().items()},
                                strict=False)
    with pytest.raises(ValueError, match=r'separate k / v LayerNorms.*shared_kv_norm=False'):
        earlier.load_state_dict(CrossAttentionQuery(48, num_heads=3).state_dict(),
                                strict=False)


@pytest.mark.parametrize('shared', [False, True])
def test_flops_match_torch_counter(shared):
    """torch counts a multiply-add as 2 FLOPs and no LayerNorm; the explicit
    attention path (need_weights=True) shows it every matmul."""
    layer = CrossAttentionQuery(64, num_heads=4, shared_kv_norm=shared)
    query, keys = torch.randn(1, 1, 64), torch.randn(1, 37, 64)
    with FlopCounterMode(display=False) as counter:
        torch_reference(layer)(query, keys, keys, need_weights=True)
    layer_norms = LN_FLOPS_PER_ELEMENT * 64 * (1 + 37 * (1 if shared else 2))
    assert layer.flops(37) == counter.get_total_flops() // 2 + layer_norms


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match='num_heads'):
        CrossAttentionQuery(48, num_heads=5)
    with pytest.raises(ValueError, match=r'tokens must be \(B, M, 48\)'):
        CrossAttentionQuery(48, num_heads=3)(torch.randn(2, 4, 5, 48))
