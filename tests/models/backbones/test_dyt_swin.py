"""DyTSwinTransformer: equal to mmpretrain's Swin on the same weights, the
skipping path equal to the masked one, FLOPs equal to mmengine's count of
mmpretrain's Swin, checkpoints of both layouts, parameter counts, bad input."""
import pytest
import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.registry import MODELS
from mmpretrain.models import SwinTransformer

from mmdyt.analysis import dense_baseline, force_activation_rate
from mmdyt.models.backbones import DyTSwinTransformer, DyTVisionTransformer
from mmdyt.models.backbones.swin_checkpoint import UNFOLD_ORDER, resize_relative_position_table
from mmdyt.models.layers import all_tokens_active
from mmdyt.models.petl import merge_petl
from mmdyt.models.record import ForwardRecord
from tiny_dyt import tiny_arch, tiny_vit

ARCH = dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4])
STAGES = (0, 1, 2, 3)


def build(**kwargs):
    kwargs = dict(dict(arch=ARCH, window_size=2, adapter_dim=8, out_type='featmap',
                       out_indices=STAGES), **kwargs)
    model = DyTSwinTransformer(**kwargs)
    model.eval()
    return model


@pytest.fixture(scope='module')
def reference():
    """mmpretrain's Swin with random (non-trivial) weights, and its state dict
    as a classifier checkpoint stores it."""
    torch.manual_seed(0)
    model = SwinTransformer(arch=ARCH, window_size=2, drop_path_rate=0.0, out_indices=STAGES)
    for param in model.parameters():
        torch.nn.init.normal_(param, std=0.1)
    model.eval()
    state = {'backbone.' + k: v for k, v in model.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(10, 128)
    return model, {'state_dict': state, 'meta': {}}


def outputs(model, x, record=None):
    with torch.no_grad():
        return model(x, record=record) if record is not None else model(x)


def assert_outputs_close(a, b, atol=1e-5):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, atol=atol, rtol=0)


def timm_layout(state, new_downsample=True):
    """mmpretrain Swin keys -> timm's (``layers.*``; merging in the original
    neighbour order, at the start of the next stage for timm >= 0.9)."""
    out = {}
    for key, value in state.items():
        key = key[len('backbone.'):] if key.startswith('backbone.') else key
        if key.startswith('head.'):
            continue
        key = (key.replace('patch_embed.projection.', 'patch_embed.proj.')
               .replace('.attn.w_msa.', '.attn.').replace('.ffn.layers.0.0.', '.mlp.fc1.')
               .replace('.ffn.layers.1.', '.mlp.fc2.').replace('stages.', 'layers.')
               .replace('norm3.', 'norm.'))
        if '.downsample.' in key:
            stage = int(key.split('.')[1])
            key = key.replace(f'layers.{stage}.',
                              f'layers.{stage + 1 if new_downsample else stage}.')
            channels = value.shape[-1] // 4
            # mmcv's channel-major unfold order -> neighbour-major original order
            inverse = [UNFOLD_ORDER.index(i) for i in range(4)]
            value = value.reshape(*value.shape[:-1], channels, 4).transpose(-1, -2)[
                ..., inverse, :].reshape(value.shape)
        out[key] = value
    return out


# ---- equivalence with mmpretrain --------------------------------------------
@pytest.mark.parametrize('size', [64, 72])  # 72: windows padded, odd maps merged
@pytest.mark.parametrize('dispatch', [None, 'mlp'])
def test_equals_mmpretrain_swin_with_zero_adapters(reference, size, dispatch):
    ref, checkpoint = reference
    model = build(dispatch=dispatch)
    model.load_pretrained(checkpoint)
    x = torch.randn(2, 3, size, size)
    with all_tokens_active(model.dispatchers()):
        assert_outputs_close(outputs(model, x), outputs(ref, x))


def test_pad_small_map_equals_mmpretrain(reference):
    ref, checkpoint = reference
    padded = SwinTransformer(arch=ARCH, window_size=2, drop_path_rate=0.0, out_indices=STAGES,
                             pad_small_map=True)
    padded.load_state_dict(ref.state_dict())
    padded.eval()
    model = build(dispatch=None, pad_small_map=True)
    model.load_pretrained(checkpoint)
    x = torch.randn(1, 3, 24, 24)  # stage maps 6, 3, 2, 1: the last smaller than its windows
    assert_outputs_close(outputs(model, x), outputs(padded, x))


def test_dense_baseline_is_mmpretrain_swin_of_the_same_arch(reference):
    ref, checkpoint = reference
    baseline = dense_baseline(build(pad_small_map=True))
    assert type(baseline) is SwinTransformer and not baseline.training
    baseline.load_state_dict(ref.state_dict())
    dense = build(dispatch=None, adapter_dim=None, pad_small_map=True)
    dense.load_pretrained(checkpoint)
    assert sum(p.numel() for p in baseline.parameters()) == \
        sum(p.numel() for p in dense.parameters())
    x = torch.randn(1, 3, 24, 24)
    assert_outputs_close(outputs(baseline, x), outputs(dense, x))


# ---- skipping == masked -------------------------------------------------------
@pytest.mark.parametrize('batch_size', [1, 5])
@pytest.mark.parametrize('rate', [0.0, 0.5, 1.0])
def test_skipping_equals_masked(reference, batch_size, rate):
    _, checkpoint = reference
    torch.manual_seed(1)
    model = build(out_type='avg_featmap')
    model.load_pretrained(checkpoint)
    for block in model.blocks:
        torch.nn.init.normal_(block.adapters['mlp'].up.weight, std=0.1)
    x = torch.randn(batch_size, 3, 64, 64)
    with torch.no_grad():
        rates = force_activation_rate(model, rate, x)
    torch.testing.assert_close(rates, torch.full_like(rates, rate), atol=0.05, rtol=0)
    skipped, masked = ForwardRecord(), ForwardRecord()
    out_skip = outputs(model, x, skipped)
    model.skip_inactive = False
    out_mask = outputs(model, x, masked)
    assert_outputs_close(out_skip, out_mask)
    assert out_skip[-1].shape == (batch_size, 128)
    for a, b in zip(skipped.masks(), masked.masks()):
        assert torch.equal(a, b)
    assert torch.equal(model.flops(skipped), model.flops(masked))


def test_record_names_blocks_across_stages(reference):
    model = build()
    record = ForwardRecord()
    outputs(model, torch.randn(2, 3, 64, 64), record)
    assert record.dispatcher_names == list(record.named_masks()) == \
        [f'blocks.{i}.mlp' for i in range(8)]
    assert [b.index for b in record.blocks] == list(range(8))
    assert [b.num_tokens for b in record.blocks] == [256] * 2 + [64] * 2 + [16] * 2 + [4] * 2
    assert record.grid == (16, 16) and record.num_fixed_tokens == 0
    assert record.activation_rates().shape == (8, )


# ---- FLOPs ----------------------------------------------------------------------
def test_dense_flops_equal_mmengine_count_of_mmpretrain_swin(reference):
    ref, _ = reference
    x = torch.randn(1, 3, 72, 72)
    analyzer = FlopAnalyzer(ref, (x, ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    model = build(dispatch=None, adapter_dim=None)
    record = ForwardRecord()
    outputs(model, x, record)
    assert float(model.flops(record)[0]) == analyzer.total()


def test_dyt_flops_follow_the_computed_tokens():
    model = build()
    x = torch.randn(2, 3, 64, 64)
    dense = build(dispatch=None, adapter_dim=None)
    dense_record = ForwardRecord()
    outputs(dense, x, dense_record)
    counts = {}
    for rate in (0.0, 1.0):
        force_activation_rate(model, rate, x)
        record = ForwardRecord()
        outputs(model, x, record)
        counts[rate] = model.flops(record)
    extra = sum(2 * b.num_tokens * c * 8 + b.num_tokens * c  # adapter + gate
                for b, c in zip(dense_record.blocks, [16] * 2 + [32] * 2 + [64] * 2 + [128] * 2))
    torch.testing.assert_close(counts[1.0], dense.flops(dense_record) + extra)
    mlp_and_norm = sum(b.num_tokens * (2 * 4 * c * c + 5 * c)
                       for b, c in zip(dense_record.blocks,
                                       [16] * 2 + [32] * 2 + [64] * 2 + [128] * 2))
    torch.testing.assert_close(counts[1.0] - counts[0.0],
                               torch.full((2, ), float(mlp_and_norm), dtype=torch.float64))


# ---- checkpoints ------------------------------------------------------------------
def test_mmpretrain_checkpoint_file_round_trip(reference, tmp_path):
    ref, checkpoint = reference
    path = str(tmp_path / 'swin.pth')
    torch.save(checkpoint, path)
    model = build(dispatch=None, pretrained=path)
    model.init_weights()
    x = torch.randn(1, 3, 64, 64)
    assert_outputs_close(outputs(model, x), outputs(ref, x))
    # and back: mmdyt's own state dict loads into another mmdyt Swin
    again = build(dispatch=None)
    again.load_state_dict(model.state_dict())
    assert_outputs_close(outputs(again, x), outputs(ref, x))


def test_init_cfg_pretrained_goes_through_the_mapping(reference, tmp_path):
    ref, checkpoint = reference
    path = str(tmp_path / 'classifier.pth')
    torch.save(checkpoint, path)
    model = MODELS.build(dict(type='DyTSwinTransformer', arch=ARCH, window_size=2,
                              dispatch=None, adapter_dim=8, out_type='featmap', out_indices=STAGES,
                              init_cfg=dict(type='Pretrained', checkpoint=path,
                                            prefix='backbone.')))
    assert model.pretrained == path
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    assert_outputs_close(outputs(model, x), outputs(ref, x))


@pytest.mark.parametrize('new_downsample', [True, False])
def test_timm_layout_checkpoint(reference, new_downsample):
    ref, checkpoint = reference
    state = timm_layout(checkpoint['state_dict'], new_downsample)
    state['head.fc.weight'] = torch.zeros(10, 128)
    state['layers.0.blocks.1.attn_mask'] = torch.zeros(64, 16, 16)
    model = build(dispatch=None)
    model.load_pretrained({'model': state})
    x = torch.randn(1, 3, 72, 72)
    assert_outputs_close(outputs(model, x), outputs(ref, x))


def test_timm_merging_order_is_the_original_neighbour_order(reference):
    """The converted weights applied by mmcv's unfold merging equal the
    original merging (cat of x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2],
    x[1::2, 1::2]) with the timm-layout weights."""
    _, checkpoint = reference
    state = timm_layout(checkpoint['state_dict'])
    model = build(dispatch=None)
    model.load_pretrained(state)
    x = torch.randn(2, 8 * 8, 16)
    merged, _ = model.stages[0].downsample(x, (8, 8))
    grid = x.view(2, 8, 8, 16)
    original = torch.cat([grid[:, 0::2, 0::2], grid[:, 1::2, 0::2], grid[:, 0::2, 1::2],
                          grid[:, 1::2, 1::2]], -1).view(2, 16, 64)
    norm = torch.nn.functional.layer_norm(original, (64, ),
                                          state['layers.1.downsample.norm.weight'],
                                          state['layers.1.downsample.norm.bias'])
    expected = norm @ state['layers.1.downsample.reduction.weight'].T
    torch.testing.assert_close(merged, expected, atol=1e-5, rtol=0)


def test_relative_position_tables_resized_for_another_window(reference):
    _, checkpoint = reference
    model = build(window_size=3)
    model.load_pretrained(checkpoint)
    table = model.stages[0].blocks[0].attn.relative_position_bias_table
    assert table.shape == (25, 1)
    source = checkpoint['state_dict']['backbone.stages.0.blocks.0.attn.w_msa.'
                                      'relative_position_bias_table']
    torch.testing.assert_close(resize_relative_position_table(source, 2), source)
    assert outputs(model, torch.randn(1, 3, 96, 96))[-1].shape == (1, 128, 3, 3)


# ---- PETL and baselines ---------------------------------------------------------
def test_lora_wraps_swin_blocks_and_merges():
    model = build(dispatch=None, adapter_dim=None,
                  petl=dict(type='lora', rank=2, alpha=2.0, targets=['qkv', 'fc1']))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert len(trainable) == 8 * 2 * 2 and all('lora_' in n for n in trainable)
    for block in model.blocks:
        torch.nn.init.normal_(block.attn.qkv.lora_up.weight, std=0.1)
    x = torch.randn(1, 3, 64, 64)
    before = outputs(model, x)
    assert merge_petl(model) == 16
    assert_outputs_close(outputs(model, x), before)


def test_baselines_trainable_parts():
    adaptformer = build(dispatch=None)
    assert not adaptformer.dispatchers()
    trainable = [n for n, p in adaptformer.named_parameters() if p.requires_grad]
    assert len(trainable) == 8 * 4 and all('.adapters.mlp.' in n for n in trainable)
    linear = build(dispatch=None, adapter_dim=None)
    assert not any(p.requires_grad for p in linear.parameters())
    full = build(dispatch=None, adapter_dim=None, freeze_pretrained=False)
    assert all(p.requires_grad for p in full.parameters())


def _build_on_meta(monkeypatch, cls, **kwargs):
    """Build without allocating (parameter counts of paper-size models)."""
    linspace = torch.linspace
    monkeypatch.setattr(torch, 'linspace',
                        lambda *args, **kw: linspace(*args, **dict(kw, device='cpu')))
    with torch.device('meta'):
        return cls(**kwargs)


def _trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_trainable_parameters_swin_b_and_vit_l_d64(monkeypatch):
    """Adapter: down C x 64 + 64, up 64 x C + C; gate C + 1; per block. The
    paper's 1.55 M (Table 11) and 3.17 M (Table 12) are the adapters alone."""
    swin = _build_on_meta(monkeypatch, DyTSwinTransformer, arch='b')
    widths = [128] * 2 + [256] * 2 + [512] * 18 + [1024] * 2
    adapters = sum(129 * c + 64 for c in widths)
    assert adapters == 1_553_664  # 1.55 M
    assert _trainable(swin) == adapters + sum(c + 1 for c in widths) == 1_565_720
    full = _build_on_meta(monkeypatch, DyTSwinTransformer, arch='b', dispatch=None,
                          adapter_dim=None, freeze_pretrained=False)
    assert _trainable(full) == 86_743_224  # Table 11: 86.74 M
    vit = _build_on_meta(monkeypatch, DyTVisionTransformer, arch='l', adapter_dim=64)
    adapters = 24 * (129 * 1024 + 64)
    assert adapters == 3_171_840  # 3.17 M
    assert _trainable(vit) == adapters + 24 * 1025 == 3_196_440


# ---- bad input --------------------------------------------------------------------
def test_map_smaller_than_window_names_the_problem():
    with pytest.raises(ValueError, match=r'1x1 feature map, smaller than window_size 2.*'
                                         r'pad_small_map=True'):
        outputs(build(), torch.randn(1, 3, 24, 24))


def test_vit_checkpoint_is_refused():
    vit = tiny_vit(arch=tiny_arch(num_layers=2, embed_dims=16, num_heads=1,
                                  feedforward_channels=32), dispatch=None, adapter_dim=None)
    with pytest.raises(ValueError, match='ViT checkpoint.*not a Swin one'):
        build().load_pretrained(vit.state_dict())


def test_checkpoint_of_another_arch_names_key_and_shapes(reference):
    _, checkpoint = reference
    wide = dict(ARCH, embed_dims=32)
    with pytest.raises(ValueError, match=r'patch_embed\.projection\.weight has shape '
                                         r'\(16, 3, 4, 4\) in the checkpoint and \(32, 3, 4, 4\)'):
        build(arch=wide).load_pretrained(checkpoint)
    with pytest.raises(ValueError, match='does not fit the model'):
        build(arch=wide).load_state_dict(build().state_dict(), strict=False)


def test_missing_swin_weights_are_named(reference):
    _, checkpoint = reference
    deeper = dict(ARCH, depths=[2, 2, 4, 2])
    with pytest.raises(ValueError, match=r'lacks \d+ Swin weights.*stages\.2\.blocks\.2'):
        build(arch=deeper).load_pretrained(checkpoint)


@pytest.mark.parametrize('kwargs, match', [
    (dict(dispatch='attn'), 'dispatches the MLP of each block'),
    (dict(arch='huge'), 'Swin arch must be one of'),
    (dict(arch=dict(embed_dims=16, depths=[2], num_heads=[1, 2])), 'custom Swin arch'),
    (dict(out_type='cls_token'), 'out_type must be one of'),
    (dict(adapter_dim=None), 'adapter_dim must be set'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)
