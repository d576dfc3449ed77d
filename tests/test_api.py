"""mmdyt.get_dyt_model: DyT on a timm / mmpretrain ViT in three lines.

Tiny models only (two blocks, 48 wide, 32 px with 8 px patches), every weight
random (std 0.2) so that LayerScale, the norms and the head all matter.
(a) with dispatch off and the new modules at their zero init the DyT model
gives the given model's logits; (b) the parameter counts match a manual count;
(c) a training step with the rate loss of the returned record changes the
trainable weights only; (d) in eval the skipping path gives the masked path's
logits; (e) save_tuned / load_tuned round-trip; (f) features the DyT backbone
lacks are refused by name. The quickstart of docs/python_api.md runs as
written, on a tiny model.
"""
import ast
import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import mmdyt
from mmdyt.api import DyTModel, UnsupportedModelError, get_dyt_model
from mmdyt.models.layers import all_tokens_active

timm = pytest.importorskip('timm')

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(pretrained=False, img_size=32, patch_size=8, depth=2, embed_dim=48, num_heads=3,
            num_classes=5)
FAMILIES = ['vit_tiny_patch16_224', 'vit_small_patch14_reg4_dinov2',
            'vit_base_patch16_clip_quickgelu_224', 'vit_base_patch16_siglip_224']
C, K, D = 48, 5, 8  # width, classes, adapter bottleneck


def randomized(model, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(std=0.2)
    return model


def tiny_timm(name='vit_tiny_patch16_224', seed=0, **kwargs):
    return randomized(timm.create_model(name, **dict(TINY, **kwargs)), seed)


def images(batch=3, seed=1):
    return torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def dense_logits(model, x):
    """Eval logits with every token active."""
    model.eval()
    with torch.no_grad(), all_tokens_active(model.backbone.dispatchers()):
        return model(x)


def mixed_gates(model, seed=2):
    """Random gates and adapters: some tokens active, some not."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'gate.weight' in name or 'adapters' in name:
                param.normal_(std=0.3)
    return model


# ---- (a) the given model's logits ----------------------------------------
@pytest.mark.parametrize('name', FAMILIES)
def test_equals_timm_with_dispatch_off(name):
    base = tiny_timm(name).eval()
    model = get_dyt_model(base, dispatch='mlp', adapter_dim=D, verify=False)
    x = images()
    with torch.no_grad():
        expected = base(x)
    torch.testing.assert_close(dense_logits(model, x), expected, atol=1e-5, rtol=1e-5)
    assert model.backbone.out_type == ('map' if 'siglip' in name else 'cls_token')


@pytest.mark.parametrize('dispatch', ['attn', 'attn_mlp', 'layer'])
def test_every_dispatch_variant_starts_from_the_model(dispatch):
    base = tiny_timm('vit_small_patch14_reg4_dinov2').eval()
    model = get_dyt_model(base, dispatch=dispatch, adapter_dim=D, verify=False)
    with torch.no_grad():
        expected = base(images())
    torch.testing.assert_close(dense_logits(model, images()), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('kwargs', [
    dict(global_pool='avg'),  # fc_norm in the head, no final norm
    dict(global_pool='avg', fc_norm=False),
    dict(class_token=False, global_pool='avg'),
    dict(act_layer='gelu_tanh', qkv_bias=False, drop_path_rate=0.1),
    dict(init_values=1e-5, no_embed_class=True, reg_tokens=2, img_size=(32, 40)),
])
def test_other_timm_settings_are_read(kwargs):
    base = tiny_timm(**kwargs).eval()
    model = get_dyt_model(base, adapter_dim=D, verify=False)
    x = torch.randn(2, 3, *base.patch_embed.img_size)
    with torch.no_grad():
        expected = base(x)
    torch.testing.assert_close(dense_logits(model, x), expected, atol=1e-5, rtol=1e-5)


def mmpretrain_classifier(out_type='cls_token', **kwargs):
    """An mmpretrain classifier, built in mmpretrain's scope (a runner of an
    earlier test may have left another toolbox's default scope)."""
    from mmengine.registry import DefaultScope
    from mmpretrain.models import ImageClassifier
    backbone = dict(type='VisionTransformer', img_size=32, patch_size=8, out_type=out_type,
                    arch=dict(embed_dims=C, num_layers=2, num_heads=3, feedforward_channels=192),
                    **kwargs)
    head = dict(type='VisionTransformerClsHead', num_classes=K, in_channels=C)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return randomized(ImageClassifier(backbone=backbone, head=head))


@pytest.mark.parametrize('kwargs', [
    dict(), dict(out_type='avg_featmap'),
    dict(layer_scale_init_value=0.1, pre_norm=True, patch_cfg=dict(bias=False)),
    dict(out_type='avg_featmap', with_cls_token=False),
])
def test_equals_mmpretrain_with_dispatch_off(kwargs):
    pytest.importorskip('mmpretrain')
    classifier = mmpretrain_classifier(**kwargs).eval()
    x = images()
    for given in (classifier, classifier.backbone):
        model = get_dyt_model(given, adapter_dim=D, verify=False)
        with torch.no_grad():
            expected = classifier(x, mode='tensor') if given is classifier else given(x)[-1]
        torch.testing.assert_close(dense_logits(model, x), expected, atol=1e-5, rtol=1e-5)


def test_the_given_model_is_left_unchanged_and_follows_device_dtype_and_mode():
    base = tiny_timm().double()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    model = get_dyt_model(base, adapter_dim=D)
    assert model.training and next(model.parameters()).dtype == torch.float64
    assert model.head.fc is not base.head
    logits, _ = model(images().double(), return_record=True)
    logits.sum().backward()
    for key, value in base.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in base.parameters())
    assert not get_dyt_model(base.eval(), adapter_dim=D).training


# ---- (b) parameter counts ---------------------------------------------------
def test_trainable_parameter_counts_match_a_manual_count(capsys):
    base = tiny_timm()
    model = get_dyt_model(base, dispatch='mlp', adapter_dim=D, target_rate=0.5)
    adapters = 2 * ((C * D + D) + (D * C + C))
    gates = 2 * (C + 1)
    head = C * K + K
    base_params = sum(p.numel() for p in base.parameters())
    counts = model.trainable_parameters()
    assert counts == dict(trainable=adapters + gates + head, all=base_params + adapters + gates,
                          adapters=adapters, dispatchers=gates, petl=0, head=head, other=0)
    assert counts['trainable'] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    model.print_trainable_parameters()
    out = capsys.readouterr().out
    share = 100 * counts['trainable'] / counts['all']
    assert f"trainable params: {counts['trainable']:,d} || all params: {counts['all']:,d} " \
           f'|| trainable%: {share:.4f}' in out
    assert f'adapters: {adapters:,d} || dispatchers: {gates:,d} || petl: 0 || ' \
           f'head: {head:,d} || other: 0' in out


def test_baselines_through_the_same_door():
    base = tiny_timm().eval()
    x = images()
    with torch.no_grad():
        expected = base(x)
    adaptformer = get_dyt_model(base, dispatch=None, adapter_dim=D)
    assert not adaptformer.backbone.dispatchers()
    assert adaptformer.trainable_parameters()['adapters'] == 2 * (2 * C * D + D + C)
    lora = get_dyt_model(base, dispatch=None, adapter_dim=None,
                         petl=dict(type='lora', rank=4, targets=['qkv']))
    counts = lora.trainable_parameters()
    assert (counts['petl'], counts['adapters'], counts['dispatchers']) == (2 * 4 * (C + 3 * C),
                                                                           0, 0)
    moe = get_dyt_model(base, adapter_dim=D, num_experts=2, target_rate=0.5)
    for model in (adaptformer, lora, moe):
        torch.testing.assert_close(dense_logits(model, x), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='target_rate needs token dispatchers'):
        get_dyt_model(base, dispatch=None, adapter_dim=D, target_rate=0.5)
    model = get_dyt_model(base, adapter_dim=D)
    _, record = model(x, return_record=True)
    with pytest.raises(ValueError, match='needs a target rate'):
        model.rate_loss(record)


# ---- (c) one training step ------------------------------------------------
def test_a_training_step_changes_only_the_trainable_weights():
    model = get_dyt_model(tiny_timm(), dispatch='mlp', adapter_dim=D, target_rate=0.25)
    model.train()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    torch.manual_seed(0)  # the Gumbel noise
    logits, record = model(images(), return_record=True)
    assert len(record.masks()) == 2 and record.num_fixed_tokens == 1
    rate_loss = model.rate_loss(record)
    assert rate_loss > 0 and rate_loss.requires_grad
    (F.cross_entropy(logits, torch.tensor([0, 1, 2])) + rate_loss).backward()
    optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert changed <= trainable
    groups = {'adapters.', 'dispatchers.', 'head.'}
    assert all(any(g in name for name in changed) for g in groups), changed
    assert any('gate' in name for name in changed)


def test_training_without_the_record_warns():
    model = get_dyt_model(tiny_timm(), adapter_dim=D, target_rate=0.5).train()
    with pytest.warns(UserWarning, match='return_record=True'):
        model(images())


# ---- (d) skipping is real and exact ---------------------------------------
def test_eval_skipping_equals_the_masked_path_and_computes_less():
    model = mixed_gates(get_dyt_model(tiny_timm(), dispatch='mlp', adapter_dim=D)).eval()
    x = images(5)
    with torch.no_grad():
        skipped, record = model(x, return_record=True)
        model.backbone.skip_inactive = False
        masked, masked_record = model(x, return_record=True)
        with all_tokens_active(model.backbone.dispatchers()):
            _, dense_record = model(x, return_record=True)
    model.backbone.skip_inactive = True
    torch.testing.assert_close(skipped, masked, atol=1e-5, rtol=1e-5)
    rates = record.activation_rates()
    assert 0 < rates.mean() < 1
    for mask in record.masks():
        assert mask.dtype == torch.bool
    flops, dense = model.flops(record), model.flops(dense_record)
    assert flops.shape == (5, ) and (flops < dense).all()
    torch.testing.assert_close(flops, model.flops(masked_record))
    assert torch.equal(flops - model.backbone.flops(record),
                       torch.full((5, ), float(C * K), dtype=torch.float64))


# ---- (e) tuned-only checkpoints -------------------------------------------
@pytest.mark.parametrize('suffix', ['.safetensors', '.pth'])
def test_save_tuned_load_tuned_round_trip(tmp_path, suffix):
    base = tiny_timm()
    model = mixed_gates(get_dyt_model(base, adapter_dim=D, petl=dict(type='lora', rank=2)))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad:
                param.add_(0.05 * torch.randn_like(param))
    path = tmp_path / f'tuned{suffix}'
    model.save_tuned(path)
    fresh = get_dyt_model(base, adapter_dim=D, petl=dict(type='lora', rank=2))
    assert fresh.load_tuned(path) is fresh
    x = images()
    model.eval(), fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x), atol=0, rtol=0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if suffix == '.safetensors':
        from safetensors.torch import load_file
        saved = set(load_file(path))
    else:
        saved = set(torch.load(path, weights_only=True)['state_dict'])
    assert saved == trainable


def test_load_tuned_refuses_other_settings_and_other_base_weights(tmp_path):
    base = tiny_timm()
    path = tmp_path / 'tuned.safetensors'
    get_dyt_model(base, adapter_dim=D).save_tuned(path)
    with pytest.raises(ValueError, match=r'does not fit this model.*another shape'):
        get_dyt_model(base, adapter_dim=2 * D).load_tuned(path)
    with pytest.raises(ValueError, match=r'lacks 4 trainable weights.*lora_'):
        get_dyt_model(base, adapter_dim=D, petl=dict(type='lora', rank=2)).load_tuned(path)
    with pytest.raises(ValueError, match='tuned on other base weights'):
        get_dyt_model(tiny_timm(seed=3), adapter_dim=D).load_tuned(path)
    other = tmp_path / 'other.pth'
    torch.save({'weight': torch.zeros(1)}, other)
    with pytest.raises(ValueError, match='save_tuned file'):
        get_dyt_model(base, adapter_dim=D).load_tuned(other)


# ---- (f) what is refused ----------------------------------------------------
def swiglu():
    from timm.layers import SwiGLU
    return dict(mlp_layer=SwiGLU, act_layer=nn.SiLU)


@pytest.mark.parametrize('kwargs, message', [
    (dict(qk_norm=True), 'qk_norm'),
    ('swiglu', 'MLP layer SwiGLU'),
    (dict(dynamic_img_size=True), 'dynamic_img_size=True'),
    (dict(global_pool='avgmax'), "global_pool='avgmax'"),
    (dict(norm_layer='rmsnorm'), 'RmsNorm in the blocks'),
    (dict(attn_drop_rate=0.1), r'attention dropout \(attn_drop_rate'),
    (dict(reg_tokens=2), 'register tokens with position embeddings'),
    (dict(pos_embed='none'), 'no position embedding'),
    (dict(act_layer='silu'), 'MLP activation SiLU'),
])
def test_timm_features_without_a_setting_are_refused_by_name(kwargs, message):
    kwargs = swiglu() if kwargs == 'swiglu' else kwargs
    with pytest.raises(UnsupportedModelError, match=message) as info:
        get_dyt_model(tiny_timm(**kwargs))
    assert isinstance(info.value, ValueError) and 'refused rather than dropped' in str(info.value)


def test_every_refused_feature_is_named_at_once():
    with pytest.raises(UnsupportedModelError) as info:
        get_dyt_model(tiny_timm(qk_norm=True, global_pool='max', **swiglu()))
    assert len(info.value.features) == 3, info.value.features


@pytest.mark.parametrize('name, kwargs, message', [
    ('eva02_tiny_patch14_224', dict(img_size=28, depth=1, embed_dim=48, num_heads=3),
     r'timm Eva: it has rotary position embedding \(rope\)'),
    ('vit_tiny_r_s16_p8_224', dict(img_size=32, depth=1), 'HybridEmbed stem'),
])
def test_other_timm_families_are_refused_by_name(name, kwargs, message):
    model = timm.create_model(name, pretrained=False, num_classes=K, **kwargs)
    with pytest.raises(UnsupportedModelError, match=message):
        get_dyt_model(model)


@pytest.mark.parametrize('kwargs, message', [
    (dict(out_type='featmap'), "out_type='featmap'"),
    (dict(layer_cfgs=dict(ffn_type='swiglu_fused')), 'FFN SwiGLUFFNFused'),
    (dict(drop_rate=0.1), 'drop_rate'),
])
def test_mmpretrain_features_without_a_setting_are_refused_by_name(kwargs, message):
    pytest.importorskip('mmpretrain')
    from mmpretrain.models import VisionTransformer
    backbone = VisionTransformer(img_size=32, patch_size=8, **dict(dict(
        arch=dict(embed_dims=C, num_layers=2, num_heads=3, feedforward_channels=192)), **kwargs))
    with pytest.raises(UnsupportedModelError, match=message):
        get_dyt_model(backbone)


def test_a_neck_is_refused():
    pytest.importorskip('mmpretrain')
    classifier = mmpretrain_classifier(out_type='avg_featmap')
    classifier.neck = nn.Identity()
    with pytest.raises(UnsupportedModelError, match='a neck'):
        get_dyt_model(classifier)


def test_bad_calls_are_refused():
    with pytest.raises(ValueError, match=r"reads \['img_size'\] from the model"):
        get_dyt_model(tiny_timm(), img_size=64)
    with pytest.raises(TypeError, match='takes a timm VisionTransformer'):
        get_dyt_model(nn.Linear(2, 2))
    model = get_dyt_model(tiny_timm(), adapter_dim=D)
    with pytest.raises(ValueError, match='already a DyTModel'):
        get_dyt_model(model)


def test_a_setting_nothing_refuses_is_caught_by_the_check():
    base = tiny_timm()  # a change no reader knows of: the final norm's output doubled
    base.norm.register_forward_hook(lambda module, args, out: out * 2)
    with pytest.raises(ValueError, match='does not reproduce its logits'):
        get_dyt_model(base)
    assert isinstance(get_dyt_model(base, verify=False), DyTModel)


# ---- the docs' quickstarts and the import rule -------------------------------
@pytest.mark.parametrize('doc', ['README.md', 'docs/python_api.md'])
def test_the_quickstart_of_the_docs_runs(doc, tmp_path, monkeypatch, capsys):
    text = (ROOT / doc).read_text()
    code = re.search(r'```python\n(.*?)```', text, re.S).group(1)
    assert code.count('pretrained=True') == 1
    code = code.replace('pretrained=True', 'pretrained=False, img_size=32, patch_size=8, '
                        'depth=2, embed_dim=48, num_heads=3')
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, doc, 'exec'), namespace)
    assert isinstance(namespace['model'], DyTModel) and namespace['model'].training is False
    assert (tmp_path / 'dyt_tuned.safetensors').is_file()
    assert 'trainable params:' in capsys.readouterr().out


def test_mmdyt_api_imports_no_toolbox_at_module_level():
    """timm, mmpretrain, mmseg and mmaction are imported inside functions only."""
    assert mmdyt.get_dyt_model is get_dyt_model and mmdyt.DyTModel is DyTModel
    for path in (ROOT / 'mmdyt' / 'api').glob('*.py'):
        for node in ast.parse(path.read_text()).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ''] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split('.')[0] in ('timm', 'mmpretrain', 'mmseg', 'mmaction')
                           for n in names), (path.name, names)
