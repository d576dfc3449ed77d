"""The tuned-only checkpoint round trip, shared by the task glue tests."""
import torch

from mmdyt.models.peft_state import PEFT_METADATA_KEY
from mmdyt.models.task_model import find_dyt_backbone


def assert_tuned_only_round_trip(build, predict, tmp_path):
    """A model of ``build()`` saves only its trainable weights and the name
    of its base ViT checkpoint; a fresh model (other random ViT weights)
    loading that state dict predicts exactly as the saved one.

    Args:
        build (callable): seed -> a new model (train mode, no pretrained).
        predict (callable): model in eval mode -> tensor of predictions.
        tmp_path (Path): where the base checkpoint is written.
    """
    model = build(0)
    backbone = find_dyt_backbone(model)
    base = str(tmp_path / 'base_vit.pth')
    torch.save(backbone.state_dict(), base)
    backbone.pretrained = base
    generator = torch.Generator().manual_seed(3)
    for param in model.parameters():
        if param.requires_grad:
            param.data.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    state = model.state_dict()
    frozen = {name for name, param in model.named_parameters() if not param.requires_grad}
    assert frozen and not frozen & set(state)
    assert state._metadata[''][PEFT_METADATA_KEY] == base
    fresh = build(1)
    assert not torch.equal(find_dyt_backbone(fresh).pos_embed, backbone.pos_embed)
    fresh.load_state_dict(state, strict=True)
    model.eval()
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(predict(fresh), predict(model))
