"""The relative position bias option of the ViT (the reference DyT code's
segmentation backbone): zero-initialised, trainable, used by the masked, the
skipping and the packed attention alike, counted in parameters and FLOPs."""
import pytest
import torch

from mmdyt.models.flops import flops_convention
from mmdyt.models.layers import Attention, relative_position_index
from mmdyt.models.record import ForwardRecord
import tiny_dyt


def tiny_vit(**kwargs):
    """The tiny ViT with 3 blocks, attention dispatch, adapters of width 4."""
    kwargs.setdefault('dispatch', 'attn')
    kwargs.setdefault('adapter_dim', 4)
    return tiny_dyt.tiny_vit(3, **kwargs)


def randomize(model):
    """Random biases and gates, about half of the tokens active."""
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if 'rel_pos_table' in name or 'gate.weight' in name:
            param.data.normal_()
        elif 'gate.bias' in name:
            param.data.zero_()


def test_zero_initialised_bias_changes_nothing_and_trains():
    torch.manual_seed(0)
    plain = tiny_vit().eval()
    torch.manual_seed(0)
    biased = tiny_vit(rel_pos_bias=True).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(biased(x)[0], plain(x)[0])
    tables = {n: p for n, p in biased.named_parameters() if 'rel_pos_table' in n}
    assert len(tables) == 3 and all(p.requires_grad for p in tables.values())
    assert all(p.shape == (7 * 7 + 3, 3) and not p.any() for p in tables.values())
    biased.train()
    (biased(x)[0] * torch.randn(2, 48)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in tables.values())


@pytest.mark.parametrize('dispatch', ['attn', 'attn_mlp', 'layer', 'mlp'])
def test_skipping_equals_masked_with_the_bias(dispatch):
    model = tiny_vit(dispatch=dispatch, rel_pos_bias=True).eval()
    randomize(model)
    x = torch.randn(3, 3, 32, 32)
    skipped, masked, record = tiny_dyt.skipping_and_masked(model, x)
    rates = record.activation_rates()
    assert 0.1 < rates.mean() < 0.9
    torch.testing.assert_close(skipped, masked, atol=1e-5, rtol=1e-5)


def test_bias_is_the_beit_table_at_each_offset():
    index = relative_position_index((2, 3))
    assert index.shape == (7, 7)
    assert index[0, 0] == 5 * 3 + 2 and (index[0, 1:] == 15).all() and (index[1:, 0] == 16).all()
    # same offset, same entry: patches (0, 0) -> (0, 1) and (1, 0) -> (1, 1);
    # offset (0, 0) is row (h - 1) * (2w - 1) + w - 1
    assert index[1, 2] == index[4, 5] != index[2, 1]
    assert index[1, 1] == index[6, 6] == 1 * 5 + 2
    attn = Attention(12, 2, rel_pos_grid=(2, 3))
    attn.rel_pos_table.data.normal_()
    bias = attn.position_bias(7)
    assert bias.shape == (2, 7, 7)
    torch.testing.assert_close(bias[1, 3, 4], attn.rel_pos_table[index[3, 4], 1])
    positions = torch.tensor([[0, 4, 2], [0, 1, 0]])
    packed = attn.position_bias(7, positions)
    assert packed.shape == (2, 2, 3, 3)
    torch.testing.assert_close(packed[0, :, 1, 2], bias[:, 4, 2])


def test_parameters_and_flops_of_the_seg_vit_b():
    """ViT-B/16 at 512: (63 * 63 + 3) x 12 heads per block, 0.57 M over 12
    blocks; one add per head and logit in the FLOPs (none in the paper's
    convention)."""
    attn = Attention(768, 12, rel_pos_grid=(32, 32))
    assert 12 * attn.rel_pos_table.numel() == 571968
    plain = Attention(768, 12)
    n = 1 + 32 * 32
    assert attn.flops(n) == plain.flops(n) + 12 * n * n
    with flops_convention('paper'):
        assert attn.flops(n) == plain.flops(n) == 4 * n * 768 * 768
    model = tiny_vit(rel_pos_bias=True, dispatch=None, adapter_dim=None).eval()
    record = ForwardRecord()
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32), record=record)
    without = tiny_vit(dispatch=None, adapter_dim=None)
    assert model.flops(record) == without.flops(record) + 3 * 3 * 17 * 17


@pytest.mark.parametrize('size', [(24, 32), (48, 40)])
def test_other_input_grids_index_the_same_table(size):
    """Smaller grids use their exact offsets, larger ones share the table's
    outermost offsets; skipping == masked there too (whole-image seg)."""
    model = tiny_vit(dispatch='attn_mlp', rel_pos_bias=True).eval()
    randomize(model)
    skipped, masked, _ = tiny_dyt.skipping_and_masked(model, torch.randn(2, 3, *size))
    torch.testing.assert_close(skipped, masked, atol=1e-5, rtol=1e-5)
    small, table = relative_position_index((2, 3), (4, 4)), relative_position_index((4, 4))
    patches = [1 + 4 * r + c for r in range(2) for c in range(3)]  # the 2x3 corner of 4x4
    assert torch.equal(small[1:, 1:], table[1:, 1:][[p - 1 for p in patches]][:, [
        p - 1 for p in patches]])
    assert small[0, 0] == table[0, 0] == 7 * 7 + 2
    large = relative_position_index((1, 6), (1, 4))
    assert large[1, 6] == large[1, 5] == large[1, 4] == 0  # offsets -5, -4, -3 -> -3
    assert large[6, 1] == large[5, 1] == large[4, 1] == 6 and large[3, 1] == 5


def test_bad_settings_are_refused():
    attn = Attention(12, 2, rel_pos_grid=(2, 2))
    with pytest.raises(ValueError, match=r'needs a class token and the 2x2 patch grid \(5'):
        attn(torch.randn(1, 7, 12))
    with pytest.raises(ValueError, match='cannot be combined with num_prompts'):
        tiny_vit(rel_pos_bias=True, num_prompts=2)


@pytest.mark.parametrize('reduction', [dict(type='tome', r=1), dict(type='evit', keep_rate=0.5),
                                       dict(type='dynamicvit', keep_ratio=0.5)])
def test_token_reduction_with_the_bias_is_refused_at_build_time(reduction):
    """Merged, fused or pruned tokens no longer form the grid the bias
    indexes: the combination is refused, naming both options (it used to run
    with the bias silently dropped)."""
    pattern = rf"token_reduction '{reduction['type']}' cannot be combined with rel_pos_bias"
    with pytest.raises(ValueError, match=pattern):
        tiny_vit(dispatch='mlp', rel_pos_bias=True, token_reduction=reduction)


@pytest.mark.parametrize('dispatch', ['attn', 'attn_mlp', 'layer'])
def test_capacity_mode_gathers_the_bias_at_the_chosen_tokens(dispatch):
    """Capacity mode runs attention on each sample's k gathered tokens: the
    bias is taken at their positions, so with room for every active token
    it equals skipping, and the table matters."""
    model = tiny_vit(dispatch=dispatch, rel_pos_bias=True).eval()
    randomize(model)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        skipped = model(x)[0]
        model.capacity = 1.0
        record = ForwardRecord()
        capacity = model(x, record=record)[0]
        assert record.overflow_share() == 0
        torch.testing.assert_close(capacity, skipped, atol=1e-5, rtol=1e-5)
        for name, param in model.named_parameters():
            if 'rel_pos_table' in name:
                param.normal_()
        assert (model(x)[0] - capacity).abs().max() > 1e-3
