"""ToMe, EViT and DynamicViT on the one ViT: equivalence with the plain
backbone, what each keeps, exact FLOPs against a hand count, losses and
gradients, and the errors of bad settings."""
import math

import pytest
import torch

from mmdyt.models.record import ForwardRecord
from mmdyt.models.token_reduction import bipartite_soft_matching, keep_and_fuse, merge_tokens
import tiny_dyt

ARCH = tiny_dyt.tiny_arch(num_layers=3)
C, H, F = ARCH['embed_dims'], ARCH['num_heads'], ARCH['feedforward_channels']
N0 = tiny_dyt.NUM_TOKENS  # class token + 4 x 4 patches of a 32 x 32 image


def backbone(token_reduction=None, dispatch=None, **kwargs):
    torch.manual_seed(0)
    kwargs.setdefault('adapter_dim', 8 if dispatch else None)
    return tiny_dyt.tiny_vit(3, dispatch=dispatch, token_reduction=token_reduction,
                             **kwargs).eval()


def run(model, x):
    record = ForwardRecord()
    out = model(x, record=record)[0]
    return out, record


@pytest.fixture
def images():
    return tiny_dyt.images(seed=1)


@pytest.mark.parametrize('reduction,dispatch', [
    (dict(type='tome', r=0), None),
    (dict(type='evit', keep_rate=1.0), None),
    (dict(type='tome', r=0), 'mlp'),
])
def test_neutral_settings_equal_the_plain_backbone(reduction, dispatch, images):
    plain, reduced = backbone(dispatch=dispatch), backbone(reduction, dispatch=dispatch)
    reduced.load_state_dict(plain.state_dict())
    with torch.no_grad():
        expected, plain_record = run(plain, images)
        out, record = run(reduced, images)
    assert torch.equal(out, expected)
    assert torch.equal(reduced.flops(record), plain.flops(plain_record))
    if dispatch:
        assert all(torch.equal(a, b) for a, b in zip(record.masks(), plain_record.masks()))


def test_merge_preserves_the_size_weighted_mean():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 11, 8, generator=generator, dtype=torch.float64)
    sizes = torch.randint(1, 4, (2, 11), generator=generator).double()
    metric = torch.randn(2, 11, 4, generator=generator, dtype=torch.float64)
    merged, merged_sizes = merge_tokens(x, sizes, metric, 4)
    assert merged.shape == (2, 7, 8) and merged_sizes.shape == (2, 7)
    torch.testing.assert_close((merged * merged_sizes[..., None]).sum(1),
                               (x * sizes[..., None]).sum(1))
    torch.testing.assert_close(merged_sizes.sum(1), sizes.sum(1))
    assert torch.equal(merged[:, 0], x[:, 0]) and torch.equal(merged_sizes[:, 0], sizes[:, 0])


def test_matching_merges_the_most_similar_pair():
    # tokens 0..4: A = {0, 2, 4}, B = {1, 3}; token 2 equals token 3, token 4 is far off
    metric = torch.tensor([[[1., 0.], [0., 1.], [1., 1.], [1., 1.], [1., -1.]]])
    merged = bipartite_soft_matching(metric, 1)(torch.arange(5.).view(1, 5, 1))
    assert merged.flatten().tolist() == [0., 4., 1., 2. + 3.]


def test_evit_keeps_ceil_rate_tokens_and_fuses_the_rest():
    x = torch.randn(1, 8, 4)
    attention = torch.tensor([[0.05, 0.3, 0.1, 0.02, 0.2, 0.08, 0.15]])
    out = keep_and_fuse(x, attention, 0.5)
    keep = math.ceil(0.5 * 7)
    assert out.shape == (1, 1 + keep + 1, 4)
    assert torch.equal(out[:, 0], x[:, 0])
    torch.testing.assert_close(out[0, 1:1 + keep], x[0, [2, 5, 7, 3]])  # patches 1, 4, 6, 2
    fused = (x[0, [1, 4, 6]] * attention[0, [0, 3, 5], None]).sum(0)  # patches 0, 3, 5
    torch.testing.assert_close(out[0, -1], fused)


@pytest.mark.parametrize('keep_rate', [0.7, 0.5, 0.25])
def test_evit_token_counts(keep_rate, images):
    model = backbone(dict(type='evit', keep_rate=keep_rate, layers=[0, 2]))
    with torch.no_grad():
        _, record = run(model, images)
    n = N0 - 1
    keep0 = math.ceil(keep_rate * n)
    assert record.blocks[0].tokens('mlp') == 1 + keep0 + 1
    assert record.blocks[1].num_tokens == record.blocks[1].tokens('mlp') == keep0 + 2
    keep2 = math.ceil(keep_rate * (keep0 + 1))
    assert record.blocks[2].tokens('mlp') == 1 + keep2 + 1


def test_dynamicvit_inference_keeps_the_configured_counts(images):
    model = backbone(dict(type='dynamicvit', keep_ratio=0.7, layers=[0, 1, 2]))
    with torch.no_grad():
        out, record = run(model, images)
    assert out.shape == (2, C)
    assert [b.num_tokens for b in record.blocks] == [1 + int(16 * 0.7**s) for s in (1, 2, 3)]
    assert [b.num_tokens for b in record.blocks] == [12, 8, 6]
    assert not record.masks()


def test_dynamicvit_training_is_differentiable(images):
    model = backbone(dict(type='dynamicvit', keep_ratio=0.5, layers=[1, 2]),
                     freeze_pretrained=True).train()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith('token_reduction.predictors.') for n in trainable)
    out, record = run(model, images)
    assert all(b.num_tokens == N0 for b in record.blocks)  # masked, not shortened
    decisions = [b.carry['decision'] for b in record.blocks if 'decision' in b.carry]
    assert len(decisions) == 2 and all(d.shape == (2, N0 - 1) for d in decisions)
    assert bool(((decisions[1] <= decisions[0]) | (decisions[0] > 0)).all())  # hierarchical
    loss = model.token_reduction.losses(record)['loss_ratio'] + out.pow(2).sum()
    loss.backward()
    for stage in model.token_reduction.predictors:
        assert stage.score[-1].weight.grad.abs().sum() > 0


def dense_block(n_attn, n_mlp):
    return (5 * C * n_attn + 4 * C * C * n_attn + 2 * n_attn**2 * C + 5 * C * n_mlp +
            2 * C * F * n_mlp)


PATCH_EMBED = 16 * 3 * 8 * 8 * C


def test_flops_equal_a_hand_count(images):
    cases = {}
    # ToMe r=2: N -> N - 2 between attention and MLP, cosine matching of C/H-wide keys
    n, total = N0, PATCH_EMBED
    for _ in range(3):
        total += dense_block(n, n - 2) + math.ceil(n / 2) * (n // 2) * (C // H)
        n -= 2
    cases['tome'] = (dict(type='tome', r=2), total + 5 * C * n)
    # EViT keep 0.5 at block 1: 8 of 16 patches kept + the fused one
    total = (PATCH_EMBED + dense_block(N0, N0) + dense_block(N0, 10) + N0 * C + 8 * C +
             dense_block(10, 10) + 5 * C * 10)
    cases['evit'] = (dict(type='evit', keep_rate=0.5, layers=[1]), total)
    # DynamicViT rho=0.5 before blocks 1, 2: 8 then 4 patches, predictors on 16 then 8
    predictor = (C * C + C * C // 2 + C // 2 * C // 4 + C // 4 * 2 + C // 2 + 5 * C)
    total = (PATCH_EMBED + dense_block(N0, N0) + 16 * predictor + dense_block(9, 9) +
             8 * predictor + dense_block(5, 5) + 5 * C * 5)
    cases['dynamicvit'] = (dict(type='dynamicvit', keep_ratio=0.5, layers=[1, 2]), total)
    for name, (cfg, expected) in cases.items():
        with torch.no_grad():
            _, record = run(backbone(cfg), images)
        assert backbone(cfg).flops(record).tolist() == [expected] * 2, name


def test_dyt_with_tome_counts_the_dispatched_mlp_on_merged_tokens(images):
    model = backbone(dict(type='tome', r=3), dispatch='mlp')
    with torch.no_grad():
        _, record = run(model, images)
    adapter = 2 * C * 8
    n, total = N0, torch.full((2, ), float(PATCH_EMBED), dtype=torch.float64)
    for block in record.blocks:
        mask = block.masks['mlp']
        assert mask.shape == (2, n - 3) and bool(mask[:, 0].all())  # class token never skipped
        active = mask.sum(1).double()
        total += (5 * C * n + 4 * C * C * n + 2 * n**2 * C + math.ceil(n / 2) * (n // 2) * C // H
                  + (5 * C + 2 * C * F) * active + (adapter + C) * (n - 3))
        n -= 3
    total += 5 * C * n
    assert torch.equal(model.flops(record), total)


def test_tome_keeps_shortening_in_training(images):
    model = backbone(dict(type='tome', r=4), freeze_pretrained=False).train()
    out, record = run(model, images)
    assert [b.tokens('mlp') for b in record.blocks] == [13, 9, 5]
    out.sum().backward()
    assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('kwargs,match', [
    (dict(token_reduction=dict(type='tome', r=[1, 2])), 'r must be'),
    (dict(token_reduction=dict(type='tome', r=-1)), 'r must be'),
    (dict(token_reduction=dict(type='evit', keep_rate=0.0)), 'keep_rate'),
    (dict(token_reduction=dict(type='evit', keep_rate=1.5)), 'keep_rate'),
    (dict(token_reduction=dict(type='dynamicvit', keep_ratio=1.2)), 'keep_ratio'),
    (dict(token_reduction=dict(type='evit', layers=[0, 3])), 'layers'),
    (dict(token_reduction=dict(type='dynamicvit', layers=[-1])), 'layers'),
    (dict(token_reduction=dict(type='tome', r=1), dispatch='attn', adapter_dim=8), 'dispatch'),
    (dict(token_reduction=dict(type='tome', r=1), out_type='featmap'), 'out_type'),
    (dict(token_reduction=dict(type='tome', r=1), num_prompts=2), 'num_prompts'),
    (dict(token_reduction=dict(type='topk')), 'type must be one of'),
    (dict(token_reduction=dict(type='evit', rate=0.5)), 'rate'),
])
def test_bad_settings_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        backbone(**kwargs)


def test_r_too_large_for_the_sequence(images):
    model = backbone(dict(type='tome', r=6))
    with pytest.raises(ValueError, match=r'r=6 is too large for a sequence of 11 tokens'):
        model(images)
    with pytest.raises(ValueError, match='keep_ratio=0.1 keeps no token'):
        backbone(dict(type='dynamicvit', keep_ratio=0.1))(images)


def test_tome_under_early_exits_follows_the_samples_that_stay():
    """Samples leave at an exit: ToMe's carried token sizes follow the rows
    that stay, so each sample's exit and logits equal its run alone."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(
            type='EarlyExitClassifier', num_classes=5, exit_interval=2,
            backbone=tiny_dyt.tiny_vit_cfg(num_layers=6, dispatch=None, adapter_dim=None,
                                           petl=dict(type='lora', rank=4),
                                           token_reduction=dict(type='tome', r=1)))).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        confidence = model.run_exits(x)[0][0][1].softmax(-1).max(-1).values
        model.thresholds = [confidence.median().item()] * 2 + [1.0]
        scores, exit_index, _, _ = model.dynamic_inference(x)
        alone = [model.dynamic_inference(x[i:i + 1]) for i in range(4)]
    assert len(set(exit_index.tolist())) > 1  # some samples left early
    for i, (score, index, _, _) in enumerate(alone):
        assert index.item() == exit_index[i].item()
        torch.testing.assert_close(score[0], scores[i], atol=1e-5, rtol=1e-5)
