"""PETL modules patched into the shared backbone: training, merging, FLOPs."""
from functools import partial

import pytest
import torch
import torch.nn as nn

from mmdyt.models.backbones import DyTVisionTransformer
from mmdyt.models.petl import (GroupLinear, LoRALinear, PETLLinear, RepAdapterLinear,
                               SequentialAdapterLinear, SlicedLoRALinear, apply_petl, merge_petl,
                               set_dropout, unmerge_petl)
from mmdyt.models.record import BlockRecord
import tiny_dyt

SETTINGS = {
    'houlsby': dict(petl=dict(type='houlsby', dim=8)),
    'lora': dict(petl=dict(type='lora', rank=4, alpha=8, targets=['qkv'])),
    'lora_qv': dict(petl=dict(type='lora', rank=4, alpha=8, targets=['q', 'v'])),
    'rep_adapter': dict(petl=dict(type='rep_adapter', dim=8, groups=2)),
}


#: The tiny ViT (C=48, 3 heads) with three blocks, without DyT's adapters and gates.
tiny_vit = partial(tiny_dyt.tiny_vit, num_layers=3, dispatch=None, adapter_dim=None)


def randomize_petl(model):
    """Zero-initialised up projections would make merging trivially exact."""
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if param.requires_grad:
            param.data.normal_(0, 0.05)


@pytest.mark.parametrize('setting', sorted(SETTINGS))
def test_each_petl_module_trains_and_only_it_changes(setting):
    torch.manual_seed(0)
    model = tiny_vit(**SETTINGS[setting])
    for name, param in model.named_parameters():  # pretrained-like scale
        if name.endswith('weight') and param.ndim == 2 and not param.requires_grad:
            param.data.normal_(0, 0.15)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all('petl_' in n or 'lora_' in n for n in trainable)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    head = nn.Linear(48, 4).requires_grad_(False)
    x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 4
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(20):
        loss = nn.functional.cross_entropy(head(model(x)[0]), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    for name, param in model.named_parameters():
        if name in frozen:
            assert torch.equal(param, frozen[name]), name


@pytest.mark.parametrize('setting', ['lora', 'lora_qv', 'rep_adapter'])
def test_merged_equals_unmerged(setting):
    torch.manual_seed(0)
    model = tiny_vit(**SETTINGS[setting]).eval()
    randomize_petl(model)
    x = torch.randn(4, 3, 40, 32)
    with torch.no_grad():
        before = model(x)[0]
        assert merge_petl(model) == 2 * 3 if setting == 'rep_adapter' else 3
        after = model(x)[0]
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(before, tiny_vit()(x)[0], atol=1e-3)


def test_rep_adapter_merge_without_bias_and_group_weight():
    torch.manual_seed(0)
    layer = RepAdapterLinear(nn.Linear(12, 6, bias=False), dim=4, groups=2, scale=0.7).eval()
    nn.init.normal_(layer.petl_up.weight)
    nn.init.normal_(layer.petl_up.bias)
    x = torch.randn(5, 12)
    dense = x @ layer.petl_down.weight.T + layer.petl_down.bias
    reference = dense @ layer.petl_up.dense_weight().T + layer.petl_up.bias
    torch.testing.assert_close(layer.petl_up(dense), reference)
    expected = layer(x)
    weight = layer.weight.detach().clone()
    layer.merge()
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    assert layer.flops(10) == 10 * 12 * 6  # one linear once merged
    layer.unmerge()
    assert layer.bias is None and not layer.merged
    torch.testing.assert_close(layer.weight, weight, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('setting', ['lora', 'lora_qv', 'rep_adapter'])
def test_merge_unmerge_is_symmetric(setting):
    torch.manual_seed(0)
    model = tiny_vit(**SETTINGS[setting]).eval()
    randomize_petl(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)[0]
        merged = merge_petl(model)
        assert unmerge_petl(model) == merged > 0
        after = model(x)[0]
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], atol=1e-5, rtol=1e-5, msg=key)


def test_petl_keeps_checkpoint_names_and_counts_flops():
    plain = tiny_vit()
    patched = tiny_vit(petl=[dict(type='rep_adapter', dim=8), dict(type='houlsby', dim=4)])
    assert set(plain.state_dict()) <= set(patched.state_dict())
    block = patched.blocks[0]
    assert isinstance(block.attn.qkv, RepAdapterLinear)
    assert isinstance(block.mlp.fc2, SequentialAdapterLinear)
    with pytest.raises(ValueError, match='two PETL modules on one layer'):
        apply_petl(tiny_vit(petl=dict(type='houlsby')), dict(type='lora', targets=['fc2']))
    n = 17  # 16 patches + class token
    rep = n * 48 * 8 + n * 8 * 48 // 2
    houlsby = 2 * n * 48 * 4  # down and up
    lora = n * 2 * (48 + 48)
    extra = tiny_vit(petl=dict(type='lora', rank=2, targets=['proj'])).blocks[0]
    assert isinstance(extra.attn.proj, LoRALinear)
    record = BlockRecord(index=0, num_tokens=n)
    assert block.flops(record) == plain.blocks[0].flops(record) + 2 * rep + houlsby
    assert extra.flops(record) == plain.blocks[0].flops(record) + lora


@pytest.mark.parametrize('petl', [dict(type='lora', rank=2, targets=['fc1', 'fc2']),
                                  dict(type='rep_adapter', dim=4, targets=['proj']),
                                  dict(type='houlsby', dim=4, targets=['qkv'])])
def test_every_type_wraps_any_target_the_same_way(petl):
    model = tiny_vit(petl=petl)
    wrapped = {name for name, m in model.named_modules() if isinstance(m, PETLLinear)}
    layers = {'qkv': 'attn.qkv', 'proj': 'attn.proj', 'fc1': 'mlp.fc1', 'fc2': 'mlp.fc2'}
    assert wrapped == {f'blocks.{i}.{layers[t]}' for i in range(3) for t in petl['targets']}
    model(torch.randn(1, 3, 32, 32))


def test_lora_rank_is_deprecated_but_builds_the_same_model():
    with pytest.deprecated_call(match="petl=dict\\(type='lora'"):
        old = tiny_vit(lora_rank=4, lora_alpha=8)
    torch.manual_seed(0)
    new = tiny_vit(**SETTINGS['lora'])
    assert set(old.state_dict()) == set(new.state_dict())
    assert isinstance(old.blocks[0].attn.qkv, LoRALinear)
    assert old.blocks[0].attn.qkv.scaling == new.blocks[0].attn.qkv.scaling == 2.0


def test_checkpoint_of_the_previous_release_loads(tmp_path):
    """tests/data/legacy/lora_vit_v0.1.pth was written by mmdyt 0.1.0 (LoRA
    through ``lora_rank``, qkv wrapped as ``attn.qkv.base``); it loads into
    today's ``petl`` LoRA and gives the outputs it gave then."""
    from pathlib import Path
    legacy = torch.load(Path(__file__).parents[2] / 'data' / 'legacy' / 'lora_vit_v0.1.pth',
                        weights_only=True)
    assert any('.qkv.base.' in key for key in legacy['state_dict'])
    model = DyTVisionTransformer(**legacy['config'], petl=dict(type='lora', rank=2, alpha=4.0))
    model.load_state_dict(legacy['state_dict'])
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(legacy['inputs'])[0], legacy['outputs'])
    wrapper = nn.Sequential(DyTVisionTransformer(**legacy['config'],
                                                 petl=dict(type='lora', rank=2, alpha=4.0)))
    wrapper.load_state_dict({f'0.{k}': v for k, v in legacy['state_dict'].items()})
    with torch.no_grad():
        torch.testing.assert_close(wrapper.eval()[0](legacy['inputs'])[0], legacy['outputs'])


def test_bad_petl_arguments():
    with pytest.raises(ValueError, match='petl type must be one of'):
        tiny_vit(petl=dict(type='prefix'))
    with pytest.raises(ValueError, match='two PETL modules on one layer'):
        tiny_vit(petl=[dict(type='lora', rank=4), dict(type='rep_adapter')])
    with pytest.raises(ValueError, match='petl targets'):
        tiny_vit(petl=dict(type='lora', targets=['qkv', 'head']))
    with pytest.raises(ValueError, match=r"takes \['alpha', 'dropout', 'rank'\]"):
        tiny_vit(petl=dict(type='lora', dim=8))
    with pytest.raises(TypeError, match='cannot be merged'):
        tiny_vit(petl=dict(type='houlsby')).blocks[0].mlp.fc2.merge()
    with pytest.raises(ValueError, match='groups=3 must divide'):
        GroupLinear(8, 48, groups=3)
    model = tiny_vit()
    with pytest.raises(ValueError, match='petl type'):
        apply_petl(model, [dict(dim=8)])
    with pytest.raises(ValueError, match="slices of qkv are LoRA targets, not with 'houlsby'"):
        tiny_vit(petl=dict(type='houlsby', targets=['q']))
    with pytest.raises(ValueError, match='together with qkv'):
        tiny_vit(petl=dict(type='lora', targets=['qkv', 'v']))
    with pytest.raises(ValueError, match='must be chunks of the 3'):
        SlicedLoRALinear(nn.Linear(4, 12), slices=[3])


def test_houlsby_default_is_one_adapter_per_block_two_an_option():
    one = tiny_vit(petl=dict(type='houlsby', dim=4))
    two = tiny_vit(petl=dict(type='houlsby', dim=4, targets=['proj', 'fc2']))
    wrapped = [n for n, m in one.named_modules() if isinstance(m, SequentialAdapterLinear)]
    assert wrapped == [f'blocks.{i}.mlp.fc2' for i in range(3)]
    count = sum(p.numel() for p in one.parameters() if p.requires_grad)
    assert count == 3 * (48 * 4 + 4 + 4 * 48 + 48)
    assert sum(p.numel() for p in two.parameters() if p.requires_grad) == 2 * count


def test_lora_on_q_and_v_slices_adapts_only_those_rows():
    torch.manual_seed(0)
    base = nn.Linear(8, 24)
    layer = SlicedLoRALinear(base, slices=[2, 0], rank=2, alpha=4.0)
    assert layer.slices == (0, 2) and layer.scaling == 2.0
    nn.init.normal_(layer.lora_up)
    x = torch.randn(5, 8)
    out, plain = layer(x), base(x)
    torch.testing.assert_close(out[:, 8:16], plain[:, 8:16])  # k untouched
    down = layer.lora_down.weight.view(2, 2, 8)
    for j, chunk in enumerate((0, 2)):
        expected = plain[:, 8 * chunk:8 * chunk + 8] + 2.0 * x @ down[j].T @ layer.lora_up[j].T
        torch.testing.assert_close(out[:, 8 * chunk:8 * chunk + 8], expected)
    assert layer.flops(10) == 10 * 8 * 24 + 10 * 2 * 2 * (8 + 8)
    model = tiny_vit(**SETTINGS['lora_qv'])
    assert isinstance(model.blocks[0].attn.qkv, SlicedLoRALinear)
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    assert set(trainable) == {f'blocks.{i}.attn.qkv.{w}' for i in range(3)
                              for w in ('lora_down.weight', 'lora_up')}
    assert sum(trainable.values()) == 3 * 2 * 4 * (48 + 48)


def test_set_dropout_reaches_every_petl_dropout():
    model = tiny_vit(petl=[dict(type='rep_adapter'), dict(type='houlsby')])
    set_dropout(model.blocks[1], 0.5)
    rates = {name: m.p for name, m in model.named_modules() if isinstance(m, nn.Dropout)}
    assert rates and all((p == 0.5) == name.startswith('blocks.1.') for name, p in rates.items())
