"""The PEFT state of a model (:mod:`mmdyt.models.peft_state`): a checkpoint
that lacks trainable weights or has keys the model lacks is an error, and a
tuned state dict loads on its own base weights only."""
import logging
import re

import pytest
import torch

from tiny_dyt import tiny_classifier, tiny_vit

pytest.importorskip('mmpretrain')


def randomize_trainable(model, seed=3):
    gen = torch.Generator().manual_seed(seed)
    for param in model.parameters():
        if param.requires_grad:
            param.data.copy_(torch.randn(param.shape, generator=gen) * 0.05)


@pytest.mark.parametrize('drop', ['backbone.blocks.1.adapters.mlp.up.weight', 'head.fc.bias'])
def test_checkpoint_missing_trainable_weights_or_with_extra_keys_is_an_error(tmp_path, drop):
    from mmengine.runner.checkpoint import load_checkpoint
    path = str(tmp_path / 'full.pth')
    checkpoint = dict(meta={}, state_dict=tiny_classifier().state_dict())
    del checkpoint['state_dict'][drop]
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=rf"lacks 1 trainable weights of the model, e\.g\. "
                       rf"\['{re.escape(drop)}'\]"):
        load_checkpoint(tiny_classifier(), path, strict=False)
    checkpoint['state_dict'][drop] = torch.zeros(1)
    checkpoint['state_dict']['backbone.blocks.1.adapters.attn.up.weight'] = torch.zeros(1)
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=r"has 1 keys the model does not have, e\.g\. "
                       r"\['backbone\.blocks\.1\.adapters\.attn\.up\.weight'\]"):
        load_checkpoint(tiny_classifier(), path, strict=False)


def test_state_dict_is_refused_on_other_base_weights(tmp_path):
    torch.manual_seed(0)
    base = tmp_path / 'base.pth'
    torch.save(tiny_vit(num_layers=3, dispatch=None, adapter_dim=None).state_dict(), base)
    model = tiny_classifier(backbone=dict(pretrained=str(base)))
    model.init_weights()
    randomize_trainable(model)
    state = model.state_dict()
    copy_of_base = tmp_path / 'copy.pth'
    copy_of_base.write_bytes(base.read_bytes())

    fresh = tiny_classifier(backbone=dict(pretrained=str(copy_of_base)))
    fresh.load_state_dict(state)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x, mode='tensor'), model(x, mode='tensor'))

    torch.save(tiny_vit(num_layers=3, dispatch=None, adapter_dim=None).state_dict(), base)
    with pytest.raises(ValueError, match=rf'the base weights in {base} differ .*recorded base: '
                       rf'{base};'):
        tiny_classifier().load_state_dict(state)
    with pytest.raises(ValueError, match=rf'the base weights in {base} differ'):
        tiny_classifier(backbone=dict(pretrained=str(base))).load_state_dict(state)


def test_state_dict_without_fingerprint_warns_naming_the_base(tmp_path):
    """A tuned-only state dict that records no fingerprint of its base
    weights (written before fingerprints, or edited) cannot be checked
    against the base it is loaded over: a warning names both."""
    from mmengine.logging import MMLogger

    from mmdyt.models.peft_state import PEFT_FINGERPRINT_KEY, PEFT_METADATA_KEY
    torch.manual_seed(0)
    base, other = tmp_path / 'base.pth', tmp_path / 'other.pth'
    torch.save(tiny_vit(num_layers=3, dispatch=None, adapter_dim=None).state_dict(), base)
    torch.save(tiny_vit(num_layers=3, dispatch=None, adapter_dim=None).state_dict(), other)
    model = tiny_classifier(backbone=dict(pretrained=str(base)))
    model.init_weights()
    randomize_trainable(model)
    state = model.state_dict()
    assert state._metadata[''][PEFT_METADATA_KEY] == str(base)
    del state._metadata[''][PEFT_FINGERPRINT_KEY]

    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        tiny_classifier(backbone=dict(pretrained=str(other))).load_state_dict(state)
    finally:
        logger.removeHandler(handler)
    messages = [record.getMessage() for record in records]
    assert len(messages) == 1, messages
    assert re.search(rf'records no fingerprint of its base weights \({PEFT_FINGERPRINT_KEY};'
                     rf'.*loaded from {other} \(the checkpoint names {base} as its base\) '
                     'unchecked', messages[0]), messages[0]
