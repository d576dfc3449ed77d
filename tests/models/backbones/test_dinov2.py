"""DINOv2 on the one ViT: LayerScale on both branches and register tokens.
With dispatch off and the adapters at their zero init the backbone equals
timm's DINOv2 on the same random weights, loaded from timm's, the original
release's and mmpretrain's layouts; skipping equals masked with the
registers never dispatched."""
import pytest
import torch

from mmdyt.models.backbones import DyTVisionTransformer, load_vit_checkpoint
from mmdyt.models.layers import all_tokens_active, resize_pos_embed
from mmdyt.models.record import ForwardRecord
from tiny_dyt import skipping_and_masked, tiny_arch

timm = pytest.importorskip('timm')

#: The tiny ViT with two blocks and DINOv2's MLP ratio of 4.
ARCH = tiny_arch(num_layers=2, feedforward_channels=192)


def timm_dinov2(num_registers):
    """timm's DINOv2 ViT-S/14 (``_reg4_`` layout with registers) resized to
    ARCH, at 56 px (4 x 4 patches), every weight random (LayerScale too)."""
    name = 'vit_small_patch14_reg4_dinov2' if num_registers else 'vit_small_patch14_dinov2'
    kwargs = dict(reg_tokens=num_registers) if num_registers else {}
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, img_size=56, embed_dim=48, depth=2,
                              num_heads=3, num_classes=0, **kwargs).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(std=0.2)
    return model


def dyt_dinov2(num_registers, **kwargs):
    kwargs = dict(dict(dispatch='mlp', adapter_dim=8), **kwargs)
    return DyTVisionTransformer(arch=ARCH, img_size=56, patch_size=14, num_registers=num_registers,
                                layer_scale_init_value=1e-5, **kwargs).eval()


def tokens(model, x):
    """(B, 1 + R + h * w, C) final-normed tokens of every position."""
    with torch.no_grad(), all_tokens_active(model.dispatchers()):
        record = ForwardRecord()
        return model.run_blocks(model.embed(x, record), record)


def original_layout(state):
    """timm's DINOv2 state dict in the layout of the original release
    (``dinov2_vits14_reg4_pretrain.pth``): ``register_tokens``, a position
    embedding row for the class token, a ``mask_token``."""
    state = dict(state)
    if 'reg_token' in state:
        state['register_tokens'] = state.pop('reg_token')
        pos_embed = state['pos_embed']
        state['pos_embed'] = torch.cat([pos_embed.new_zeros(1, 1, 48), pos_embed], 1)
    state['mask_token'] = torch.zeros(1, 48)
    return state


def mmpretrain_layout(state):
    """The same weights under mmpretrain's ``VisionTransformer`` names
    (``layer_scale_init_value``: ``attn.gamma1`` / ``ffn.gamma2``)."""
    names = [('blocks.{}.ls1.gamma', 'layers.{}.attn.gamma1.weight'),
             ('blocks.{}.ls2.gamma', 'layers.{}.ffn.gamma2.weight'),
             ('blocks.{}.norm1.', 'layers.{}.ln1.'), ('blocks.{}.norm2.', 'layers.{}.ln2.'),
             ('blocks.{}.attn.', 'layers.{}.attn.'),
             ('blocks.{}.mlp.fc1.', 'layers.{}.ffn.layers.0.0.'),
             ('blocks.{}.mlp.fc2.', 'layers.{}.ffn.layers.1.')]
    out = {}
    for key, value in state.items():
        for i in range(ARCH['num_layers']):
            for ours, theirs in names:
                if key.startswith(ours.format(i)):
                    key = theirs.format(i) + key[len(ours.format(i)):]
        key = key.replace('patch_embed.proj.', 'patch_embed.projection.')
        out['ln1.' + key[5:] if key.startswith('norm.') else key] = value
    return out


LAYOUTS = {'timm': lambda state: state, 'original': original_layout,
           'mmpretrain': mmpretrain_layout}


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
@pytest.mark.parametrize('num_registers', [0, 4])
def test_equals_timm_dinov2_loaded_from_each_layout(num_registers, layout):
    reference = timm_dinov2(num_registers)
    model = dyt_dinov2(num_registers)
    load_vit_checkpoint(model, LAYOUTS[layout](reference.state_dict()))
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        expected = reference.forward_features(x)
        pooled = reference.forward_head(expected, pre_logits=True)
    ours = tokens(model, x)
    assert ours.shape == (2, 1 + num_registers + 16, 48)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model.format_output(ours, (4, 4)), pooled, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('dispatch', ['mlp', 'attn', 'attn_mlp', 'layer'])
@pytest.mark.parametrize('batch_size', [1, 5])
def test_skipping_equals_masked_with_registers_never_dispatched(dispatch, batch_size):
    model = dyt_dinov2(4, dispatch=dispatch)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'gate.weight' in name or 'ls' in name or 'adapters' in name:
                param.normal_(std=0.3)
    x = torch.randn(batch_size, 3, 56, 56)
    if batch_size > 1:
        x[-1, :, :14, :14] = float('nan')  # the first patch of the last sample
    skipped, masked, record = skipping_and_masked(model, x)
    torch.testing.assert_close(skipped, masked, atol=1e-5, rtol=1e-5, equal_nan=True)
    masks = record.masks()
    assert all(mask[:, :5].all() for mask in masks)  # class token + 4 registers
    assert 0 < torch.stack([m[0, 5:].float().mean() for m in masks]).mean() < 1


def test_position_embedding_of_the_release_grid_is_interpolated():
    """The release is 518 px (37 x 37 patches); a 224 px model takes it
    bicubically resized to 16 x 16 (as mmpretrain does), the class token's
    row kept."""
    reference = timm.create_model('vit_small_patch14_dinov2', pretrained=False, img_size=518,
                                  embed_dim=48, depth=2, num_heads=3, num_classes=0)
    model = DyTVisionTransformer(arch=ARCH, img_size=224, patch_size=14,
                                 layer_scale_init_value=1e-5)
    load_vit_checkpoint(model, reference.state_dict())
    expected = resize_pos_embed(reference.pos_embed.detach(), (37, 37), (16, 16))
    assert expected.shape == (1, 1 + 16 * 16, 48)
    torch.testing.assert_close(model.pos_embed.detach(), expected)


def test_layer_scale_and_registers_are_counted_and_refused_where_they_do_not_fit():
    model = dyt_dinov2(4, dispatch=None, adapter_dim=None)
    plain = DyTVisionTransformer(arch=ARCH, img_size=56, patch_size=14, dispatch=None,
                                 adapter_dim=None).eval()
    record = ForwardRecord()
    with torch.no_grad():
        model(torch.randn(1, 3, 56, 56), record=record)
    assert record.num_tokens == 21 and record.num_fixed_tokens == 5
    plain_record = ForwardRecord()
    with torch.no_grad():
        plain(torch.randn(1, 3, 56, 56), record=plain_record)
    per_block = 2 * 21 * 48  # two LayerScales, one multiply per element
    assert model.flops(record).item() - plain.flops(record).item() == 2 * per_block
    with pytest.raises(ValueError, match='num_registers'):
        dyt_dinov2(4, token_reduction=dict(type='tome', r=1))
    with pytest.raises(ValueError, match=r'has no place for.*reg_token'):
        load_vit_checkpoint(plain, timm_dinov2(4).state_dict())
    with pytest.raises(ValueError, match='lacks'):
        load_vit_checkpoint(model, {k: v for k, v in timm_dinov2(4).state_dict().items()
                                    if 'ls1' not in k})


def test_a_non_square_grid_without_the_class_row_is_recognised():
    """timm's register layout on a 4 x 6 grid: 24 rows, one short of the
    model's 25 (a square), get the class token's zero row."""
    reference = timm.create_model('vit_small_patch14_reg4_dinov2', pretrained=False,
                                  img_size=(56, 84), embed_dim=48, depth=2, num_heads=3,
                                  num_classes=0).eval()
    model = DyTVisionTransformer(arch=ARCH, img_size=(56, 84), patch_size=14, num_registers=4,
                                 layer_scale_init_value=1e-5).eval()
    load_vit_checkpoint(model, reference.state_dict())
    assert not model.pos_embed[0, 0].any()
    torch.testing.assert_close(model.pos_embed[0, 1:], reference.pos_embed[0])
