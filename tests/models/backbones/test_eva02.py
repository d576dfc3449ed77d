"""EVA-02 on the one ViT: SwiGLU (with the sub-LN of the base and larger
models), 2-D rotary position embeddings that follow each token when tokens
are packed or gathered, the pooled LayerNorm. With dispatch off and the
adapters at their zero init the backbone equals timm's EVA-02 on the same
random weights (both of timm's attention layouts); skipping equals masked."""
import pytest
import torch

from mmdyt.models.backbones import DyTVisionTransformer, load_vit_checkpoint
from mmdyt.models.layers import RotaryEmbedding2d, all_tokens_active
from mmdyt.models.record import ForwardRecord
from tiny_dyt import skipping_and_masked, tiny_arch

timm = pytest.importorskip('timm')

#: timm model -> the mmdyt settings of its layout: S fuses qkv with separate
#: q / v biases and packs the SwiGLU; B has q / k / v projections and a
#: sub-LN in its SwiGLU.
LAYOUTS = {'eva02_small_patch14_224': dict(), 'eva02_base_patch14_224': dict(mlp_norm=True)}
EVA02 = dict(patch_size=14, img_size=56, mlp='swiglu', rope=True, rope_ref_grid=(4, 4),
             out_type='avg_featmap', final_norm=False, pool_norm=True)


def timm_eva02(name):
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, img_size=56, embed_dim=48, depth=2,
                              num_heads=3, num_classes=0, ref_feat_shape=(4, 4)).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(std=0.2)
    return model


def dyt_eva02(name, **kwargs):
    hidden = 128  # int(48 * 4 * 2 / 3)
    settings = dict(EVA02, **LAYOUTS[name])
    settings.update(dict(dispatch='mlp', adapter_dim=8), **kwargs)
    return DyTVisionTransformer(arch=tiny_arch(num_layers=2, feedforward_channels=hidden),
                                **settings).eval()


def loaded(name, **kwargs):
    model = dyt_eva02(name, **kwargs)
    load_vit_checkpoint(model, timm_eva02(name).state_dict())
    return model


@pytest.mark.parametrize('name', sorted(LAYOUTS))
def test_equals_timm_eva02(name):
    reference, model = timm_eva02(name), dyt_eva02(name)
    load_vit_checkpoint(model, reference.state_dict())
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad(), all_tokens_active(model.dispatchers()):
        record = ForwardRecord()
        tokens = model.run_blocks(model.embed(x, record), record)
        pooled = model.format_output(tokens, record.grid)
        expected = reference.forward_features(x)
        torch.testing.assert_close(tokens, expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(pooled, reference.forward_head(expected, pre_logits=True),
                                   atol=1e-5, rtol=1e-5)
    unrotated = dyt_eva02(name, rope=False)  # the same weights without rotation differ
    load_vit_checkpoint(unrotated, reference.state_dict())
    with torch.no_grad(), all_tokens_active(unrotated.dispatchers()):
        record = ForwardRecord()
        unrotated_tokens = unrotated.run_blocks(unrotated.embed(x, record), record)
    assert (unrotated_tokens - tokens).abs().max() > 1e-2


def test_rotary_tables_leave_leading_tokens_and_follow_the_reference_grid():
    rope = RotaryEmbedding2d(8, ref_grid=(4, 4))
    sin, cos = rope.tables((2, 2), num_prefix_tokens=1)
    assert sin.shape == cos.shape == (5, 8)
    assert not sin[0].any() and (cos[0] == 1).all()
    # on a 2x2 grid rescaled to 4x4, patch (1, 1) sits at (2, 2): frequency 1 -> angle 2
    assert sin[4, 0].item() == pytest.approx(torch.tensor(2.0).sin().item())
    assert sin[4, 0] == sin[4, 1] and sin[4, 4] == sin[4, 0]  # interleaved pairs, both axes


@pytest.mark.parametrize('dispatch', ['mlp', 'attn', 'attn_mlp', 'layer'])
@pytest.mark.parametrize('batch_size', [1, 5])
def test_skipping_equals_masked_with_rotated_packed_tokens(dispatch, batch_size):
    model = loaded('eva02_base_patch14_224', dispatch=dispatch)
    torch.manual_seed(1)
    with torch.no_grad():
        for key, param in model.named_parameters():
            if 'gate.weight' in key or 'adapters' in key:
                param.normal_(std=0.3)
    x = torch.randn(batch_size, 3, 56, 56)
    if batch_size > 1:
        x[-1, :, :14, :14] = float('nan')
    skipped, masked, record = skipping_and_masked(model, x)
    torch.testing.assert_close(skipped, masked, atol=1e-5, rtol=1e-5, equal_nan=True)
    rates = torch.stack([m[0, 1:].float().mean() for m in record.masks()])
    assert 0 < rates.mean() < 1


def test_capacity_mode_rotates_the_gathered_tokens_at_their_positions():
    model = loaded('eva02_small_patch14_224', dispatch='attn_mlp')
    with torch.no_grad():
        for dispatcher in model.dispatchers():
            dispatcher.gate.weight.normal_(std=0.5)
    x = torch.randn(3, 3, 56, 56)
    with torch.no_grad():
        skipped = model(x)[0]
        model.capacity = 1.0
        torch.testing.assert_close(model(x)[0], skipped, atol=1e-5, rtol=1e-5)


def test_flops_count_swiglu_rope_and_the_pooled_norm():
    model = loaded('eva02_base_patch14_224', dispatch=None, adapter_dim=None)
    record = ForwardRecord()
    with torch.no_grad():
        model(torch.randn(1, 3, 56, 56), record=record)
    block = model.blocks[0]
    n, c, hidden = 17, 48, 128
    attention = 4 * n * c * c + 2 * n * n * c + 4 * n * c  # projections, matmuls, rotation
    swiglu = 3 * n * c * hidden + n * hidden + 5 * n * hidden  # linears, gating, sub-LN
    assert block.flops(record.blocks[0]) == 2 * 5 * n * c + attention + swiglu
    assert model.flops_by_part(record)['fc_norm1'].item() == 5 * c


@pytest.mark.parametrize('settings, message', [
    (dict(token_reduction=dict(type='tome', r=1)), 'cannot be combined with rope=True'),
    (dict(act='quick_gelu'), "mlp='swiglu' gates with SiLU"),
    (dict(mlp='mlp'), "mlp_norm .* needs mlp='swiglu'"),
    (dict(out_type='cls_token'), "pool_norm normalises the averaged tokens"),
])
def test_combinations_that_do_not_fit_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        dyt_eva02('eva02_base_patch14_224', **settings)


def test_moe_adapters_skip_as_they_mask():
    model = loaded('eva02_small_patch14_224', dispatch='attn_mlp', num_experts=4)
    with torch.no_grad():
        for dispatcher in model.dispatchers():
            dispatcher.gate.weight.normal_(std=0.5)
    skipped, masked, _ = skipping_and_masked(model, torch.randn(3, 3, 56, 56))
    torch.testing.assert_close(skipped, masked, atol=1e-5, rtol=1e-5)


def test_the_mim_release_norm_is_the_pooled_norm():
    """EVA-02's MIM release names the pooled LayerNorm ``norm`` (timm renames
    it ``fc_norm``) and carries ``mask_token`` / ``lm_head`` / ``rope``
    entries: the key mapping loads it all the same."""
    reference = timm_eva02('eva02_base_patch14_224')
    state = dict(reference.state_dict())
    state['norm.weight'], state['norm.bias'] = state.pop('fc_norm.weight'), \
        state.pop('fc_norm.bias')
    state.update({'mask_token': torch.zeros(1, 1, 48), 'lm_head.weight': torch.zeros(8, 48),
                  'rope.freqs_cos': torch.zeros(16, 16)})
    model = dyt_eva02('eva02_base_patch14_224')
    load_vit_checkpoint(model, state)
    torch.testing.assert_close(model.fc_norm.weight, reference.fc_norm.weight)
