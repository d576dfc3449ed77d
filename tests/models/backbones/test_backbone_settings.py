"""One argument-checking path for every backbone: what the ViT refuses at
build time, Swin refuses too, with the same messages; inputs and devices
that cannot work are named."""
import pytest
import torch

from mmdyt.models.backbones import DyTSwinTransformer
from mmdyt.models.record import ForwardRecord
from tiny_dyt import tiny_vit

ARCH = dict(embed_dims=16, depths=[2, 2], num_heads=[1, 2])


@pytest.mark.parametrize('kwargs, message', [
    (dict(out_indices=7), r'out_indices \[7\] outside \[-2, 2\) for 2 stages'),
    (dict(out_indices=(1, -1)), r'name one of the stages twice \(stages \[1, 1\]\)'),
    (dict(out_indices=()), 'non-empty sequence of ints'),
    (dict(drop_path_rate=1.0), r'drop_path_rate must be in \[0, 1\), got 1.0'),
    (dict(arch=dict(ARCH, num_heads=[3, 2])), 'num_heads=3 does not divide embed_dims=16'),
    (dict(arch=dict(ARCH, mlp_ratio=4)), 'a custom Swin arch must be a dict with keys'),
    (dict(arch=dict(ARCH, num_heads=[1])), 'one num_heads per stage'),
])
def test_swin_refuses_bad_settings_at_build_time(kwargs, message):
    kwargs = dict(dict(arch=ARCH, window_size=2, out_indices=(1, )), **kwargs)
    with pytest.raises(ValueError, match=message):
        DyTSwinTransformer(**kwargs)


def test_swin_negative_out_indices_count_from_the_last_stage():
    assert DyTSwinTransformer(arch=ARCH, window_size=2, out_indices=(-1, 0)).out_indices == [0, 1]


@pytest.mark.parametrize('kwargs, message', [
    (dict(adapter_dim=2.5), 'adapter_dim must be an int >= 1, got 2.5'),
    (dict(patch_size=0), 'patch_size must be an int >= 1, got 0'),
    (dict(img_size=4), r'img_size must be an int or \(H, W\), each at least patch_size=8'),
    (dict(num_experts=0), 'num_experts must be an int >= 1, got 0'),
])
def test_vit_refuses_bad_constructor_arguments_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_vit(**kwargs)


def test_an_input_that_is_not_an_image_batch_is_named():
    with pytest.raises(ValueError, match=r'takes \(B, 3, H, W\) images, got shape \(3, 32, 32\)'):
        tiny_vit().eval()(torch.randn(3, 32, 32))
    swin = DyTSwinTransformer(arch=ARCH, window_size=2, out_indices=(1, ), img_size=32).eval()
    with pytest.raises(ValueError, match=r'got shape \(2, 1, 32, 32\)'):
        swin(torch.randn(2, 1, 32, 32))


@pytest.mark.parametrize('build', [
    lambda: tiny_vit(dispatch=None, token_reduction=dict(type='evit', keep_rate=0.5), num_layers=4),
    lambda: DyTSwinTransformer(arch=ARCH, window_size=2, out_indices=(1, ), img_size=32),
])
def test_an_empty_batch_gives_empty_outputs(build):
    with torch.no_grad():
        out = build().eval()(torch.randn(0, 3, 32, 32))[0]
    assert out.shape[0] == 0


def test_torch_jit_script_is_refused_with_the_ways_that_work():
    with pytest.raises(RuntimeError, match='torch.jit.script .* use torch.export'):
        torch.jit.script(tiny_vit().eval())


def test_the_meta_device_builds_and_runs_shapes_but_refuses_flops():
    with torch.device('meta'):
        model = tiny_vit(dispatch='attn_mlp').eval()
    record = ForwardRecord()
    out = model(torch.empty(2, 3, 32, 32, device='meta'), record=record)[0]
    assert out.is_meta and out.shape == (2, 48)
    with pytest.raises(ValueError, match='forward on the meta device'):
        model.flops(record)


@pytest.mark.parametrize('kwargs, message', [
    (dict(dispatch=['mlp', 'attn']), r"dispatch must be one of .*got \['mlp', 'attn'\]"),
    (dict(capacity='half'), r"capacity must be a number in \(0, 1\], got 'half'"),
])
def test_settings_of_the_wrong_type_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_vit(**kwargs)
