"""One argument-checking path for every backbone: what the ViT refuses at
build time, Swin refuses too, with the same messages."""
import pytest

from mmdyt.models.backbones import DyTSwinTransformer

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
