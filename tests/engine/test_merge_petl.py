from types import SimpleNamespace

import pytest
import torch

from mmdyt.engine.hooks import MergePETLHook
from mmdyt.models.petl import LoRALinear, RepAdapterLinear
from tiny_dyt import tiny_vit


@pytest.mark.parametrize('petl, wrapped', [(dict(petl=dict(type='lora', rank=2)), 2),
                                           (dict(petl=dict(type='rep_adapter', dim=4)), 4)])
def test_merges_before_test_and_keeps_outputs(petl, wrapped):
    torch.manual_seed(0)
    model = tiny_vit(2, img_size=16, dispatch=None, adapter_dim=None, **petl).eval()
    for name, param in model.named_parameters():
        if 'lora_' in name or 'petl_' in name:
            param.data.normal_(0, 0.1)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        before = model(x)[0]
        MergePETLHook().before_test(SimpleNamespace(model=model))
        after = model(x)[0]
    wrappers = [m for m in model.modules() if isinstance(m, (LoRALinear, RepAdapterLinear))]
    assert len(wrappers) == wrapped and all(m.merged for m in wrappers)
    assert (before - after).abs().max() < 1e-5
