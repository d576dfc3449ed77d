"""Self-supervised ViT checkpoints (Dyn-Adapter Table 3): MoCo v3 and MAE in
their public release formats and mmpretrain's conversions load through the
one key mapping and give the source model's outputs."""
import pytest
import torch
from mmpretrain.models import MAEViT, MoCoV3ViT, VisionTransformer

from tiny_dyt import tiny_arch, tiny_vit

#: The tiny ViT (C=48, 3 heads) with three blocks.
TINY = tiny_arch(num_layers=3)


def timm_vit(seed=0):
    """A dense DyT ViT with random weights: its state dict has timm's names."""
    torch.manual_seed(seed)
    model = tiny_vit(num_layers=3, dispatch=None, adapter_dim=None, freeze_pretrained=False)
    for param in model.parameters():
        param.data.normal_(0, 0.1)
    return model.eval()


def loaded(checkpoint, path):
    torch.save(checkpoint, path)
    model = tiny_vit(num_layers=3, dispatch='mlp', adapter_dim=8, pretrained=str(path))
    model.init_weights()
    for dispatcher in model.dispatchers():  # every token active: the dense ViT
        dispatcher.gate.bias.data.fill_(1e4)
    return model.eval()


def assert_same_outputs(model, reference):
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], reference(x)[0], atol=1e-5, rtol=1e-5)


def test_moco_v3_release_loads_the_base_encoder_only(tmp_path):
    base, momentum = timm_vit(0), timm_vit(1)
    state = {f'module.base_encoder.{k}': v for k, v in base.state_dict().items()}
    state.update({f'module.momentum_encoder.{k}': v for k, v in momentum.state_dict().items()})
    state['module.predictor.0.weight'] = torch.zeros(8, 48)
    state['module.base_encoder.head.0.weight'] = torch.zeros(8, 48)
    model = loaded({'epoch': 300, 'arch': 'vit_base', 'state_dict': state}, tmp_path / 'moco.pth')
    assert_same_outputs(model, base)


def test_mae_release_ignores_the_decoder(tmp_path):
    source = timm_vit()
    state = dict(source.state_dict(), mask_token=torch.zeros(1, 1, 24),
                 decoder_pos_embed=torch.zeros(1, 17, 24))
    state['decoder_embed.weight'] = torch.zeros(24, 48)
    state['decoder_blocks.0.attn.qkv.weight'] = torch.zeros(72, 24)
    model = loaded({'model': state}, tmp_path / 'mae_pretrain_vit_tiny.pth')
    assert_same_outputs(model, source)


@pytest.mark.parametrize('mmpretrain_class', [MAEViT, MoCoV3ViT])
def test_mmpretrain_conversions(mmpretrain_class, tmp_path):
    torch.manual_seed(0)
    extra = dict(mask_ratio=0.75) if mmpretrain_class is MAEViT else dict(stop_grad_conv1=True)
    source = mmpretrain_class(arch=TINY, img_size=32, patch_size=8, **extra)
    for param in source.parameters():
        param.data.normal_(0, 0.1)
    state = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    state['neck.decoder_embed.weight'] = torch.zeros(24, 48)
    state['head.mlp.0.weight'] = torch.zeros(8, 48)
    model = loaded({'meta': {}, 'state_dict': state}, tmp_path / 'converted.pth')
    reference = VisionTransformer(arch=TINY, img_size=32, patch_size=8, out_type='cls_token')
    reference.load_state_dict(source.state_dict(), strict=False)
    reference.eval()
    assert_same_outputs(model, reference)
