from functools import partial

import numpy as np
import pytest
import torch

from mmdyt.models.backbones import DyTVisionTransformer, load_vit_checkpoint
from mmdyt.models.losses import ActivationRateLoss
from mmdyt.models.record import ForwardRecord
import tiny_dyt
from tiny_dyt import tiny_arch

#: The ViT of these tests: the tiny one (C=48, 3 heads) with three blocks.
TINY = tiny_arch(num_layers=3)
tiny_vit = partial(tiny_dyt.tiny_vit, num_layers=3)
VARIANTS = ['mlp', 'attn', 'attn_mlp', 'layer']


def run(model, x):
    """The outputs of a forward and its record."""
    record = ForwardRecord()
    return model(x, record=record), record


def randomize_adapters(model):
    """Zero-initialised up projections would hide adapter bugs."""
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if 'adapters' in name:
            param.data.normal_(0, 0.05)


def force_rate(model, rate):
    """0 / 1: every gate far below / above the threshold; 0.5: random gates."""
    for dispatcher in model.dispatchers():
        gate = dispatcher.gate
        if rate == 0.5:
            gate.weight.data.normal_(0, 1.0)
            gate.bias.data.zero_()
        else:
            gate.weight.data.zero_()
            gate.bias.data.fill_(1e4 if rate == 1 else -1e4)


@pytest.mark.parametrize('variant', VARIANTS)
@pytest.mark.parametrize('batch_size', [1, 5])
@pytest.mark.parametrize('rate', [0, 0.5, 1])
@pytest.mark.parametrize('num_experts', [1, 4])
def test_skipping_equals_masked_path(variant, batch_size, rate, num_experts):
    torch.manual_seed(0)
    model = tiny_vit(dispatch=variant, adapter_dim=8, num_experts=num_experts,
                     out_type='raw').eval()
    randomize_adapters(model)
    force_rate(model, rate)
    x = torch.randn(batch_size, 3, 32, 32)
    with torch.no_grad():
        model.skip_inactive = False
        masked, masked_record = run(model, x)
        model.skip_inactive = True
        skipped, record = run(model, x)
    masked, skipped = masked[0], skipped[0]
    masked_rates, rates = masked_record.activation_rates(), record.activation_rates()
    torch.testing.assert_close(rates, masked_rates)
    if rate in (0, 1):
        assert torch.all(rates == rate)
    else:
        assert 0 < rates.mean() < 1
    assert (skipped - masked).abs().max() < 1e-5


def test_skipping_with_different_k_per_sample():
    """Attention packing must keep each sample's own K."""
    torch.manual_seed(0)
    model = tiny_vit(dispatch='attn', adapter_dim=8, out_type='raw').eval()
    randomize_adapters(model)
    force_rate(model, 0.5)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        model.skip_inactive = False
        masked, record = run(model, x)
        masked = masked[0]
        counts = record.masks()[0].sum(1)
        model.skip_inactive = True
        skipped = model(x)[0]
    assert len(set(counts.tolist())) > 1
    assert (skipped - masked).abs().max() < 1e-5


def test_skipped_tokens_are_not_computed():
    """The MLP sees only the active tokens in the skipping path."""
    model = tiny_vit(dispatch='mlp', adapter_dim=8).eval()
    force_rate(model, 0.5)
    seen = []
    model.blocks[0].mlp.fc1.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    with torch.no_grad():
        _, record = run(model, torch.randn(3, 3, 32, 32))
    assert seen[0] == int(record.masks()[0].sum())
    assert seen[0] < 3 * 17


def test_matches_mmpretrain_vit():
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(0)
    reference = VisionTransformer(arch=TINY, img_size=32, patch_size=8, out_type='cls_token')
    reference.eval()  # mmpretrain's train() returns None
    for param in reference.parameters():
        param.data.normal_(0, 0.1)
    model = tiny_vit(dispatch='mlp', adapter_dim=64).eval()
    force_rate(model, 1)
    load_vit_checkpoint(model, reference.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = reference(x)[0]
        for skip in (True, False):
            model.skip_inactive = skip
            assert (model(x)[0] - expected).abs().max() < 1e-5


def to_npz_layout(state, num_layers, embed_dims, num_heads):
    """The inverse of the .npz conversion, as the original ViT files store it."""
    t = {k: v.numpy() for k, v in state.items()}
    head_dims = embed_dims // num_heads
    out = {
        'embedding/kernel': t['patch_embed.proj.weight'].transpose(2, 3, 1, 0),
        'embedding/bias': t['patch_embed.proj.bias'],
        'cls': t['cls_token'],
        'Transformer/posembed_input/pos_embedding': t['pos_embed'],
        'Transformer/encoder_norm/scale': t['norm.weight'],
        'Transformer/encoder_norm/bias': t['norm.bias'],
        'head/kernel': np.zeros((embed_dims, 10), np.float32),
    }
    for i in range(num_layers):
        b, p = f'Transformer/encoderblock_{i}/', f'blocks.{i}.'
        mha = b + 'MultiHeadDotProductAttention_1/'
        out[b + 'LayerNorm_0/scale'] = t[p + 'norm1.weight']
        out[b + 'LayerNorm_0/bias'] = t[p + 'norm1.bias']
        out[b + 'LayerNorm_2/scale'] = t[p + 'norm2.weight']
        out[b + 'LayerNorm_2/bias'] = t[p + 'norm2.bias']
        qkv_w = np.split(t[p + 'attn.qkv.weight'], 3)
        qkv_b = np.split(t[p + 'attn.qkv.bias'], 3)
        for name, w, bias in zip(('query', 'key', 'value'), qkv_w, qkv_b):
            out[f'{mha}{name}/kernel'] = w.T.reshape(embed_dims, num_heads, head_dims)
            out[f'{mha}{name}/bias'] = bias.reshape(num_heads, head_dims)
        out[mha + 'out/kernel'] = t[p + 'attn.proj.weight'].T.reshape(
            num_heads, head_dims, embed_dims)
        out[mha + 'out/bias'] = t[p + 'attn.proj.bias']
        for j, name in enumerate(('fc1', 'fc2')):
            out[f'{b}MlpBlock_3/Dense_{j}/kernel'] = t[p + f'mlp.{name}.weight'].T
            out[f'{b}MlpBlock_3/Dense_{j}/bias'] = t[p + f'mlp.{name}.bias']
    return out


@pytest.mark.parametrize('fmt', ['timm', 'npz', 'mmpretrain_file'])
def test_loads_pretrained_formats(tmp_path, fmt):
    torch.manual_seed(0)
    source = tiny_vit(dispatch=None, adapter_dim=None, freeze_pretrained=False)
    state = {k: v for k, v in source.state_dict().items()}
    if fmt == 'timm':
        checkpoint = dict(state, **{'head.weight': torch.zeros(10, 48)})
    elif fmt == 'npz':
        checkpoint = str(tmp_path / 'vit.npz')
        np.savez(checkpoint, **to_npz_layout(state, 3, 48, 3))
    else:
        from mmpretrain.models import VisionTransformer
        reference = VisionTransformer(arch=TINY, img_size=32, patch_size=8)
        load_vit_checkpoint(source, reference.state_dict())
        state = source.state_dict()
        checkpoint = str(tmp_path / 'vit.pth')
        torch.save({'state_dict': {f'backbone.{k}': v
                                   for k, v in reference.state_dict().items()}}, checkpoint)
    model = tiny_vit(dispatch='mlp', adapter_dim=8, pretrained=checkpoint,
                     petl=dict(type='lora', rank=2, targets=['qkv']))
    model.init_weights()
    loaded = model.state_dict()
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value, msg=key)


def test_pos_embed_interpolates_to_other_sizes():
    source = tiny_vit(dispatch=None, adapter_dim=None)
    model = tiny_vit(img_size=48, out_type='featmap')
    load_vit_checkpoint(model, source.state_dict())
    assert model.pos_embed.shape == (1, 1 + 36, 48)
    assert model(torch.randn(1, 3, 64, 40))[0].shape == (1, 48, 8, 5)


def test_checkpoint_mismatch_names_key_and_shapes(tmp_path):
    other_patch = tiny_vit(patch_size=4, dispatch=None, adapter_dim=None)
    model = tiny_vit()
    with pytest.raises(ValueError,
                       match=r'patch_embed\.proj\.weight.*\(48, 3, 4, 4\).*\(48, 3, 8, 8\)'):
        load_vit_checkpoint(model, other_patch.state_dict())
    deeper = tiny_vit(num_layers=2, dispatch=None, adapter_dim=None)
    with pytest.raises(ValueError, match='lacks .* ViT weights'):
        load_vit_checkpoint(model, deeper.state_dict())
    path = tmp_path / 'cut.pth'
    torch.save(model.state_dict(), path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match='cut.pth.*truncated'):
        load_vit_checkpoint(model, str(path))


def test_only_peft_parameters_train():
    model = tiny_vit(dispatch='mlp', adapter_dim=8)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all('adapters' in n or 'dispatchers' in n for n in trainable)
    full = tiny_vit(dispatch='mlp', adapter_dim=8, freeze_pretrained=False)
    assert all(p.requires_grad for p in full.parameters())
    vpt = tiny_vit(dispatch=None, adapter_dim=None, num_prompts=3)
    assert {n for n, p in vpt.named_parameters() if p.requires_grad} == {'prompts'}


def test_training_path_trains_dispatchers_and_adapters():
    torch.manual_seed(0)
    model = tiny_vit(dispatch='mlp', adapter_dim=8).train()
    x = torch.randn(4, 3, 32, 32)
    out, record = run(model, x)
    loss = out[0].pow(2).mean() + ActivationRateLoss(0.5)(record.masks())
    loss.backward()
    gate_grad = model.blocks[1].dispatchers['mlp'].gate.weight.grad
    assert gate_grad is not None and gate_grad.abs().sum() > 0
    assert model.blocks[0].adapters['mlp'].up.weight.grad.abs().sum() > 0
    assert model.patch_embed.proj.weight.grad is None


@pytest.mark.parametrize('variant', VARIANTS)
def test_training_is_stochastic_eval_is_deterministic(variant):
    torch.manual_seed(0)
    model = tiny_vit(dispatch=variant, adapter_dim=8)
    force_rate(model, 0.5)
    for dispatcher in model.dispatchers():
        dispatcher.gate.weight.data.mul_(0.01)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    first, second = run(model, x)[1].masks(), run(model, x)[1].masks()
    assert any(not torch.equal(a, b) for a, b in zip(first, second))
    model.eval()
    with torch.no_grad():
        first, second = run(model, x)[1].masks(), run(model, x)[1].masks()
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def count_trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def truncate(value, digits=2):
    return int(value * 10**digits) / 10**digits


def vit_b(**kwargs):
    return DyTVisionTransformer(arch='b', **kwargs).eval()


def test_vit_b16_parameters_match_paper():
    """Tables 3-6: millions of trainable backbone parameters (truncated to two
    decimals as the paper prints them; adapters + dispatchers)."""
    assert truncate(count_trainable(vit_b(adapter_dim=64)) / 1e6) == 1.19
    assert truncate(count_trainable(vit_b(adapter_dim=8)) / 1e6) == 0.16
    assert truncate(count_trainable(vit_b(adapter_dim=64, num_experts=4)) / 1e6) == 4.80


def test_vit_b16_flops_match_paper():
    """fvcore convention at 224: dense 17.58 G (with a 1000-class head),
    AdaptFormer d=64 17.81 G (17.815 G: the paper truncates, as it does for
    the parameter counts)."""
    head = 768 * 1000
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        dense = vit_b(dispatch=None, adapter_dim=None)
        dense_flops = dense.flops(run(dense, x)[1]).item()
        adaptformer = vit_b(dispatch=None, adapter_dim=64)
        adaptformer_flops = adaptformer.flops(run(adaptformer, x)[1]).item()
        dyt = vit_b(dispatch='mlp', adapter_dim=64)
        force_rate(dyt, 0)
        dyt_flops = dyt.flops(run(dyt, x)[1]).item()
    assert truncate((dense_flops + head) / 1e9) == 17.58
    assert truncate((adaptformer_flops + head) / 1e9, 2) == 17.81
    # Only the class token left in the MLPs: the MLP and its LayerNorm
    # (8NC^2 + 5NC per block) of the 196 patch tokens leave.
    mlp = 12 * (8 * 196 * 768**2 + 5 * 196 * 768)
    gates = 12 * 197 * 768  # the gate scores every token, the class token too
    assert dyt_flops == adaptformer_flops - mlp + gates


def test_flops_follow_active_tokens():
    model = tiny_vit(dispatch='attn_mlp', adapter_dim=8).eval()
    force_rate(model, 0.5)
    with torch.no_grad():
        _, record = run(model, torch.randn(3, 3, 32, 32))
    flops = model.flops(record)
    assert flops.shape == (3,)
    counts = torch.stack([m.sum(1) for m in record.masks()])
    busiest = counts.sum(0).argmax()
    assert flops.argmax() == busiest


@pytest.mark.parametrize('kwargs, name', [
    (dict(dispatch='token'), 'dispatch'),
    (dict(arch='huge'), 'arch'),
    (dict(adapter_dim=0), 'adapter_dim'),
    (dict(num_experts=0), 'num_experts'),
    (dict(tau=0), 'tau'),
    (dict(out_type='tokens'), 'out_type'),
])
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        tiny_vit(**kwargs)


@pytest.mark.parametrize('rate', [-0.1, 1.5])
def test_rate_outside_unit_interval(rate):
    with pytest.raises(ValueError, match='target_rate'):
        ActivationRateLoss(rate)


def test_load_state_dict_refuses_other_arch_even_non_strict():
    wider = tiny_vit(arch=tiny_arch(num_layers=3, embed_dims=96))
    wrapper = torch.nn.Sequential(tiny_vit())
    with pytest.raises(ValueError, match=r'0\.cls_token has shape \(1, 1, 96\).*\(1, 1, 48\)'):
        wrapper.load_state_dict({f'0.{k}': v for k, v in wider.state_dict().items()},
                                strict=False)


@pytest.mark.parametrize('variant', VARIANTS)
def test_bfloat16_cpu_inference_skips_like_float32(variant):
    """CPU bfloat16 inference (PyTorch's own kernels, no opt-in deploy step)
    runs both paths and stays close to float32."""
    torch.manual_seed(0)
    model = tiny_vit(dispatch=variant, adapter_dim=8, out_type='raw').eval()
    randomize_adapters(model)
    force_rate(model, 0.5)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)[0]
        half = model.to(torch.bfloat16)
        skipped, record = run(half, x.bfloat16())
        half.skip_inactive = False
        masked = half(x.bfloat16())[0]
    assert skipped[0].dtype == torch.bfloat16
    assert 0 < record.activation_rates().mean() < 1
    assert (skipped[0].float() - expected).abs().max() < 0.1
    assert (masked.float() - expected).abs().max() < 0.1
