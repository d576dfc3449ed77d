"""CLIP (OpenAI with QuickGELU, OpenCLIP with GELU) and SigLIP on the one
ViT: pre-norm, the post-norm and projection of the release, no class token
with attention pooling (MAP). With dispatch off and the adapters at their zero
init each equals timm's model on the same random weights, loaded from timm's
layout and (CLIP) from OpenAI's / OpenCLIP's state-dict layout."""
import pytest
import torch

from mmdyt.models.backbones import DyTVisionTransformer, load_vit_checkpoint
from mmdyt.models.layers import all_tokens_active
from mmdyt.models.record import ForwardRecord
from tiny_dyt import skipping_and_masked, tiny_arch

timm = pytest.importorskip('timm')

ARCH = tiny_arch(num_layers=2, feedforward_channels=192)
#: timm model -> mmdyt backbone settings of the family.
FAMILIES = {
    'vit_base_patch16_clip_quickgelu_224': dict(pre_norm=True, norm_eps=1e-5,
                                                act='quick_gelu', proj_dims=32),
    'vit_base_patch16_clip_224': dict(pre_norm=True, norm_eps=1e-5, proj_dims=32),
    'vit_base_patch16_siglip_224': dict(class_token=False, out_type='map'),
}


def timm_model(name):
    """timm's ``name`` resized to ARCH at 64 px (4 x 4 patches), every weight
    random; CLIP towers keep their 32-wide projection as timm does (``head``)."""
    torch.manual_seed(0)
    head = dict(num_classes=32) if 'clip' in name else dict(num_classes=0)
    model = timm.create_model(name, pretrained=False, img_size=64, embed_dim=48, depth=2,
                              num_heads=3, **head).eval()
    with torch.no_grad():
        for key, param in model.named_parameters():
            param.normal_(std=0.2)
            if key == 'head.bias':
                param.zero_()  # CLIP's projection has no bias
    return model


def dyt_model(name, **kwargs):
    kwargs = dict(dict(dispatch='mlp', adapter_dim=8), **dict(FAMILIES[name], **kwargs))
    return DyTVisionTransformer(arch=ARCH, img_size=64, patch_size=16, **kwargs).eval()


def openai_layout(state):
    """timm's CLIP state dict in OpenAI's / OpenCLIP's layout (``visual.``)."""
    names = [('patch_embed.proj.', 'conv1.'), ('norm_pre.', 'ln_pre.'), ('norm.', 'ln_post.')]
    for i in range(ARCH['num_layers']):
        block, res = f'blocks.{i}.', f'transformer.resblocks.{i}.'
        names += [(block + 'norm1.', res + 'ln_1.'), (block + 'norm2.', res + 'ln_2.'),
                  (block + 'attn.qkv.', res + 'attn.in_proj_'),
                  (block + 'attn.proj.', res + 'attn.out_proj.'),
                  (block + 'mlp.fc1.', res + 'mlp.c_fc.'),
                  (block + 'mlp.fc2.', res + 'mlp.c_proj.')]
    out = {'transformer.resblocks.0.attn.in_proj_weight': torch.zeros(1)}  # the text tower
    for key, value in state.items():
        if key == 'cls_token':
            out['visual.class_embedding'] = value.reshape(-1)
        elif key == 'pos_embed':
            out['visual.positional_embedding'] = value[0]
        elif key == 'head.weight':
            out['visual.proj'] = value.t()
        elif key != 'head.bias':
            for ours, theirs in names:
                if key.startswith(ours):
                    key = theirs + key[len(ours):]
                    break
            out['visual.' + key.replace('qkv.', '')] = value
    return out


def features(model, x):
    with torch.no_grad(), all_tokens_active(model.dispatchers()):
        record = ForwardRecord()
        tokens = model.run_blocks(model.embed(x, record), record)
        return tokens, model.format_output(tokens, record.grid)


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_equals_timm_on_the_same_weights(name):
    reference, model = timm_model(name), dyt_model(name)
    load_vit_checkpoint(model, reference.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference.forward_features(x)
        pooled = reference.forward_head(expected) if 'clip' in name else \
            reference.forward_head(expected, pre_logits=True)
    tokens, output = features(model, x)
    torch.testing.assert_close(tokens, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(output, pooled, atol=1e-5, rtol=1e-5)
    assert output.shape == (2, 32 if 'clip' in name else 48)


@pytest.mark.parametrize('name', ['vit_base_patch16_clip_quickgelu_224',
                                  'vit_base_patch16_clip_224'])
def test_openai_and_openclip_state_dicts_load_to_the_same_model(name):
    reference = timm_model(name)
    from_timm, from_release = dyt_model(name), dyt_model(name)
    load_vit_checkpoint(from_timm, reference.state_dict())
    load_vit_checkpoint(from_release, openai_layout(reference.state_dict()))
    released = from_release.state_dict()
    for key, value in from_timm.state_dict().items():
        if not from_timm.is_tuning_parameter(key):
            torch.testing.assert_close(released[key], value, msg=key)


@pytest.mark.parametrize('name', sorted(FAMILIES))
@pytest.mark.parametrize('dispatch', ['mlp', 'attn', 'attn_mlp', 'layer'])
def test_skipping_equals_masked(name, dispatch):
    model = dyt_model(name, dispatch=dispatch)
    load_vit_checkpoint(model, timm_model(name).state_dict())
    torch.manual_seed(1)
    with torch.no_grad():
        for key, param in model.named_parameters():
            if 'gate.weight' in key or 'adapters' in key:
                param.normal_(std=0.3)
    x = torch.randn(5, 3, 64, 64)
    x[-1, :, :16, :16] = float('nan')
    skipped, masked, record = skipping_and_masked(model, x)
    torch.testing.assert_close(skipped, masked, atol=1e-5, rtol=1e-5, equal_nan=True)
    assert skipped[:-1].isfinite().all()
    rates = torch.stack([m[0, model.num_fixed_tokens:].float().mean() for m in record.masks()])
    assert 0 < rates.mean() < 1


def test_siglip_has_every_patch_dispatchable_and_counts_its_pooling():
    model = dyt_model('vit_base_patch16_siglip_224', dispatch=None, adapter_dim=None)
    assert model.num_fixed_tokens == 0 and model.pos_embed.shape == (1, 16, 48)
    record = ForwardRecord()
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64), record=record)
    parts = model.flops_by_part(record)
    # latent q and proj on one token, kv on 16, one query over 16 keys, LN + MLP on one token
    pool = (48 * 48 + 16 * 96 * 48 + 2 * 16 * 48 + 48 * 48 + 5 * 48 + 2 * 48 * 192)
    assert parts['attn_pool1'].item() == pool


@pytest.mark.parametrize('settings, message', [
    (dict(class_token=False), "out_type='cls_token' needs class_token=True"),
    (dict(class_token=False, out_type='map', rel_pos_bias=True), 'class_token=False'),
    (dict(proj_dims=32, out_type='featmap'), 'proj_dims projects the pooled output'),
    (dict(class_token=False, out_type='map', token_reduction=dict(type='tome', r=1)),
     'cannot be combined with class_token=False'),
])
def test_combinations_that_do_not_fit_are_refused_naming_both(settings, message):
    with pytest.raises(ValueError, match=message):
        DyTVisionTransformer(arch=ARCH, img_size=64, patch_size=16, **settings)


@pytest.mark.parametrize('dispatch', ['attn', 'layer'])
def test_a_sample_without_active_tokens_gets_the_adapter_only_on_both_paths(dispatch):
    """Without a class token a sample may deactivate every token of an
    attention part: the part adds nothing (no 0 / 0 in the masked path), and
    a batch where no sample has an active token runs too."""
    model = dyt_model('vit_base_patch16_siglip_224', dispatch=dispatch)
    with torch.no_grad():
        for dispatcher in model.dispatchers():
            dispatcher.gate.bias.fill_(-1e4)  # every token inactive
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        skipped = model(x)[0]
        model.skip_inactive = False
        masked = model(x)[0]
        model.train()
        trained = model(x, record=ForwardRecord())[0]
    assert skipped.isfinite().all() and trained.isfinite().all()
    torch.testing.assert_close(skipped, masked, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_the_dense_baseline_is_the_same_family(name):
    """benchmark.py's ratios compare a DyT model with the dense model of its
    own family: the twin has the family's modules and counts them."""
    from mmdyt.analysis.baselines import dense_baseline, dense_flops
    model = dyt_model(name)
    twin = dense_baseline(model)
    assert isinstance(twin, DyTVisionTransformer) and twin.dispatch is None
    assert twin.family_settings == model.family_settings
    assert hasattr(twin, 'attn_pool') == hasattr(model, 'attn_pool')
    x = torch.randn(1, 3, 64, 64)
    plain = DyTVisionTransformer(arch=ARCH, img_size=64, patch_size=16, dispatch=None,
                                 adapter_dim=None)
    record = ForwardRecord()
    with torch.no_grad():
        plain(x, record=record)
    assert dense_flops(model, x).item() > plain.flops(record).item()


def test_a_clip_release_loads_without_its_projection_and_moe_runs_without_a_class_token():
    """Video and classification fine-tuning read the 768-wide tokens: the
    release's projection is left out (logged like a head). MoE adapters run
    on the skipping path of a model without a class token."""
    name = 'vit_base_patch16_clip_quickgelu_224'
    reference = timm_model(name)
    model = dyt_model(name, proj_dims=None)
    load_vit_checkpoint(model, openai_layout(reference.state_dict()))
    assert not hasattr(model, 'proj')
    siglip = dyt_model('vit_base_patch16_siglip_224', num_experts=4)
    with torch.no_grad():
        assert siglip(torch.randn(2, 3, 64, 64))[0].shape == (2, 48)


def test_a_torchscript_release_is_refused_with_the_conversion(tmp_path):
    """OpenAI's CLIP files are TorchScript archives: mmdyt loads weights only,
    so it names the format and the one-line conversion to a state dict."""
    from mmdyt.models.backbones import read_checkpoint
    path = tmp_path / 'ViT-B-16.pt'
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    with pytest.raises(ValueError, match=r'TorchScript archive .*torch\.jit\.load'):
        read_checkpoint(str(path))
