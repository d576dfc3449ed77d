"""Building models for the analysis tools as the Runner builds them."""
import pytest
import torch

pytest.importorskip('mmpretrain')

from mmdyt.analysis import build_model, load_config  # noqa: E402

CONFIG = 'configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py'
TINY = {'model.backbone.arch': 't', 'model.backbone.patch_size': 32,
        'model.backbone.pretrained': None, 'model.head.in_channels': 192}


def test_top_level_data_preprocessor_goes_into_the_model():
    """mmpretrain configs normalise in a top-level ``data_preprocessor``: the
    model must preprocess real samples with it (get_flops.py,
    calibrate_exits.py), not with the classifier's default."""
    cfg = load_config(CONFIG, TINY)
    assert 'data_preprocessor' not in cfg.model
    model = build_model(cfg)
    for key in ('mean', 'std'):
        expected = torch.tensor(cfg.data_preprocessor[key]).view(-1, 1, 1)
        torch.testing.assert_close(getattr(model.data_preprocessor, key), expected)


def test_the_model_keeps_its_own_data_preprocessor():
    options = dict(TINY)
    options['model.data_preprocessor'] = dict(type='ClsDataPreprocessor', mean=[1.0] * 3,
                                              std=[2.0] * 3)
    model = build_model(load_config(CONFIG, options))
    torch.testing.assert_close(model.data_preprocessor.std, torch.full((3, 1, 1), 2.0))
