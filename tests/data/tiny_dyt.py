"""A tiny DyT ViT with non-trivial gates and adapters, and image batches, for
the tests of the deploy paths (ONNX, torch.compile, capacity mode)."""
import torch

from mmdyt.models.backbones import DyTVisionTransformer

#: The width of the tiny ViT (one block unless ``num_layers`` is given).
ARCH = dict(embed_dims=48, num_layers=1, num_heads=3, feedforward_channels=96)
#: 32x32 images, 8x8 patches: 16 patch tokens + the class token.
SHAPE = (3, 32, 32)
NUM_TOKENS = 1 + (32 // 8)**2


def tiny_dyt(dispatch='mlp', num_experts=1, num_layers=1, **kwargs):
    """A DyT ViT (C=48, 3 heads, MLP 96) in eval mode whose gates (std 0.5)
    and adapter up projections (std 0.1) are random, so that patterns are
    mixed and adapters count."""
    torch.manual_seed(0)
    model = DyTVisionTransformer(
        arch=dict(ARCH, num_layers=num_layers),
        img_size=32, patch_size=8, adapter_dim=8, dispatch=dispatch, num_experts=num_experts,
        **kwargs).eval()
    with torch.no_grad():
        for dispatcher in model.dispatchers():
            dispatcher.gate.weight.normal_(std=0.5)
        for name, param in model.named_parameters():
            if 'adapters' in name and 'up' in name:
                param.normal_(std=0.1)
    return model


def images(batch_size=2, seed=123):
    """(batch_size, 3, 32, 32) random images."""
    return torch.randn(batch_size, *SHAPE, generator=torch.Generator().manual_seed(seed))
