"""The one attention of mmdyt: heads split and merged as a reference
multi-head attention does, an additive bias, keys for merging, packed
tokens equal to the dense rows, and its FLOPs."""
import pytest
import torch
import torch.nn as nn

from mmdyt.models.flops import flops_convention
from mmdyt.models.layers import Attention, PackedTokens


def reference(attn, x, bias=None):
    """nn.MultiheadAttention holding ``attn``'s weights, ``bias`` (heads, N, N)
    added to its logits."""
    dims = attn.proj.in_features
    mha = nn.MultiheadAttention(dims, attn.num_heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(attn.qkv.weight)
        mha.in_proj_bias.copy_(attn.qkv.bias)
        mha.out_proj.weight.copy_(attn.proj.weight)
        mha.out_proj.bias.copy_(attn.proj.bias)
    mask = None if bias is None else bias.repeat(x.shape[0], 1, 1)
    return mha(x, x, x, attn_mask=mask, need_weights=False)[0]


def test_equals_a_reference_multi_head_attention_with_and_without_a_bias():
    torch.manual_seed(0)
    attn, x = Attention(24, 3), torch.randn(2, 7, 24)
    bias = torch.randn(3, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), reference(attn, x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(attn(x, bias=bias), reference(attn, x, bias),
                                   atol=1e-5, rtol=1e-5)


def test_returns_its_queries_and_keys_and_adds_the_bias_to_its_own():
    torch.manual_seed(0)
    attn = Attention(12, 2, rel_pos_grid=(2, 3))
    attn.rel_pos_table.data.normal_()
    x, bias = torch.randn(2, 7, 12), torch.randn(2, 1, 1, 7)
    with torch.no_grad():
        out, q, k = attn(x, bias=bias, return_qk=True)
        q_ref, k_ref, _ = attn.split_heads(attn.qkv(x))
        own = attn.position_bias(7)
        expected = attn.proj(attn.merge_heads(attn.attend(q_ref, k_ref, _, own + bias)))
    assert q.shape == k.shape == (2, 2, 7, 6)
    torch.testing.assert_close(q, q_ref)
    torch.testing.assert_close(k, k_ref)
    torch.testing.assert_close(out, expected)
    assert (out - attn(x)).abs().max() > 1e-3


def test_any_leading_dims_as_for_windows():
    """(B, windows, M, C) attends within each window."""
    torch.manual_seed(0)
    attn, x = Attention(12, 2), torch.randn(2, 3, 4, 12)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), attn(x.flatten(0, 1)).view_as(x))


def test_packed_tokens_equal_the_dense_attention_of_each_sample():
    """Each sample's active tokens attend among themselves only, the bias
    taken at their positions: the rows equal dense attention on those
    tokens alone."""
    torch.manual_seed(0)
    attn = Attention(12, 2, rel_pos_grid=(2, 2))
    attn.rel_pos_table.data.normal_()
    x = torch.randn(2, 5, 12)
    mask = torch.tensor([[True, False, True, True, False], [True, True, False, False, False]])
    packed = PackedTokens(mask)
    with torch.no_grad():
        out = attn.forward_packed(x[mask], packed)
        for sample in range(2):
            positions = mask[sample].nonzero().squeeze(1)
            expected = attn(x[sample, positions][None], positions=positions[None])[0]
            rows = out[mask[:sample].sum():mask[:sample + 1].sum()]
            torch.testing.assert_close(rows, expected, atol=1e-5, rtol=1e-5)
    assert packed.positions().tolist() == [[0, 2, 3], [0, 1, 1]]


def test_key_mask_removes_keys_from_the_softmax():
    torch.manual_seed(0)
    attn, x = Attention(12, 2), torch.randn(1, 5, 12)
    keep = torch.tensor([[1.0, 0, 1, 1, 0]])
    with torch.no_grad():
        masked = attn(x, key_mask=keep)
        kept = attn(x[:, keep[0].bool()])
    torch.testing.assert_close(masked[:, keep[0].bool()], kept, atol=1e-5, rtol=1e-5)


def test_flops_count_queries_times_keys_and_nothing_of_it_in_the_paper_convention():
    attn = Attention(48, 3)
    linears = 4 * 10 * 48 * 48
    assert attn.flops(10) == linears + 2 * 10 * 10 * 48
    assert attn.flops(10, num_keys=4) == linears + 2 * 10 * 4 * 48
    with flops_convention('paper'):
        assert attn.flops(10, num_keys=4) == linears


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match='num_heads=5 does not divide embed_dims=48'):
        Attention(48, 5)
