"""The foundation-model configs: DINOv2-B/14 (VTAB-1K, ADE20K UperNet), CLIP
ViT-B/16 (K400, SSv2) and SigLIP-B/16 (VTAB-1K).

Every one loads, starts with its model-zoo line, carries its family's
settings (normalisation, patch, LayerScale, pre-norm, QuickGELU, no class
token with attention pooling), builds with a shrunk backbone and runs a
training and a test forward from uint8 inputs through its data
preprocessor. A shrunk random timm model of each release's architecture,
put in an offline Hub cache under the config's own ``hf-hub:`` name, loads
through ``pretrained`` and gives timm's features. The full-size trainable
parameter counts are those of docs/foundation_models.md."""
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmdyt  # noqa: F401
from mmdyt.models.layers import LayerScale, QuickGELU
from tiny_dyt import tiny_arch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOC = osp.join(ROOT, 'docs', 'foundation_models.md')

DINOV2 = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
              pretrained='hf-hub:timm/vit_base_patch14_dinov2.lvd142m', patch_size=14)
CLIP = dict(mean=[122.770938, 116.7460125, 104.09373615],
            std=[68.5005327, 66.6321579, 70.32316305],
            pretrained='hf-hub:timm/vit_base_patch16_clip_224.openai', patch_size=16)
SIGLIP = dict(mean=[127.5] * 3, std=[127.5] * 3,
              pretrained='hf-hub:timm/vit_base_patch16_siglip_224.webli', patch_size=16)
FAMILIES = {'dinov2': DINOV2, 'clip': CLIP, 'siglip': SIGLIP}

#: leaf config -> (task, family, method)
CONFIGS = {
    'configs/cls/dyt/dyt-r0.5-d8_dinov2-b14_vtab1k.py': ('cls', 'dinov2', 'dyt'),
    'configs/cls/adaptformer/adaptformer-d8_dinov2-b14_vtab1k.py': ('cls', 'dinov2', 'adaptformer'),
    'configs/cls/lora/lora-r8_dinov2-b14_vtab1k.py': ('cls', 'dinov2', 'lora'),
    'configs/cls/vpt/vpt-deep10_dinov2-b14_vtab1k.py': ('cls', 'dinov2', 'vpt'),
    'configs/cls/full/full_dinov2-b14_vtab1k.py': ('cls', 'dinov2', 'full'),
    'configs/cls/linear/linear_dinov2-b14_vtab1k.py': ('cls', 'dinov2', 'linear'),
    'configs/cls/dyt/dyt-r0.5-d8_siglip-b16_vtab1k.py': ('cls', 'siglip', 'dyt'),
    'configs/cls/linear/linear_siglip-b16_vtab1k.py': ('cls', 'siglip', 'linear'),
    'configs/seg/dyt/dyt-r0.5_dinov2-b14_upernet_ade20k-512x512.py': ('seg', 'dinov2', 'dyt'),
    'configs/seg/linear/linear_dinov2-b14_upernet_ade20k-512x512.py': ('seg', 'dinov2', 'linear'),
    'configs/seg/full/full_dinov2-b14_upernet_ade20k-512x512.py': ('seg', 'dinov2', 'full'),
    'configs/video/dyt/dyt-r0.5_clip-b16_8x16x1_k400.py': ('video', 'clip', 'dyt'),
    'configs/video/dyt/dyt-r0.5_clip-b16_u8_ssv2.py': ('video', 'clip', 'dyt'),
    'configs/video/adaptformer/adaptformer_clip-b16_8x16x1_k400.py': (
        'video', 'clip', 'adaptformer'),
    'configs/video/adaptformer/adaptformer_clip-b16_u8_ssv2.py': (
        'video', 'clip', 'adaptformer'),
    'configs/video/full/full_clip-b16_8x16x1_k400.py': ('video', 'clip', 'full'),
    'configs/video/full/full_clip-b16_u8_ssv2.py': ('video', 'clip', 'full'),
}
SCOPES = {'cls': 'mmpretrain', 'seg': 'mmseg', 'video': 'mmaction'}
#: method -> substrings of the trainable backbone parameters (None: every one)
TRAINABLE = {'dyt': ('adapters.', 'dispatchers.'), 'adaptformer': ('adapters.', ),
             'lora': ('lora_', ), 'vpt': ('prompts', ), 'linear': (), 'full': None}
#: The shrunk images: 2 x 2 patches for classification and video; for
#: segmentation 64 x 64 (5 x 5 patches after padding) and, for the DyT
#: config, the real 512 x 512 ADE20K crop (37 x 37 patches after padding).
TINY_IMG = {('cls', 14): 28, ('cls', 16): 32, ('video', 16): 32, ('seg', 14): 64}


def config(path):
    return Config.fromfile(osp.join(ROOT, path))


def registry(task):
    if task == 'cls':
        from mmpretrain.registry import MODELS
    elif task == 'seg':
        from mmseg.registry import MODELS
    else:
        from mmaction.registry import MODELS
    return MODELS


def shrink(cfg, task, pretrained=None):
    """The config's model with a 48-wide ViT (2 blocks; 4 with the 4 seg
    outputs), its heads narrowed to it, ``pretrained`` in place of the
    release; the family settings untouched."""
    model = cfg.model
    patch = model.backbone.patch_size
    img_size = 518 if task == 'seg' else TINY_IMG[(task, patch)]
    model.backbone.update(arch=tiny_arch(num_layers=4 if task == 'seg' else 2),
                          img_size=img_size, pretrained=pretrained)
    bn = dict(type='BN', requires_grad=True)
    if task == 'cls':
        model.head.in_channels = 48
    elif task == 'seg':
        model.backbone.out_indices = (0, 1, 2, 3)
        model.neck.update(embed_dim=48, norm_cfg=bn)
        model.decode_head.update(in_channels=[48] * 4, channels=8, norm_cfg=bn)
        model.auxiliary_head.update(in_channels=48, channels=8, norm_cfg=bn)
    else:
        model.cls_head.update(in_channels=48, num_heads=3)
    return model


def build(path, pretrained=None):
    task = CONFIGS[path][0]
    cfg = config(path)
    with DefaultScope.overwrite_default_scope(SCOPES[task]):
        return registry(task).build(shrink(cfg, task, pretrained))


def uint8_images(*shape, seed=0):
    return torch.randint(0, 256, shape, dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def run_forwards(model, task, patch, size=None):
    """A loss and a prediction from uint8 ``size`` x ``size`` inputs
    (default :data:`TINY_IMG`) through the model's data preprocessor;
    returns the losses."""
    size = size or TINY_IMG[(task, patch)]
    if task == 'cls':
        from mmpretrain.structures import DataSample
        samples = [DataSample().set_gt_label(i) for i in (3, 7)]
        data = model.data_preprocessor(
            dict(inputs=[uint8_images(3, size, size, seed=i) for i in range(2)],
                 data_samples=samples), True)
        losses = model(**data, mode='loss')
        model.eval()
        with torch.no_grad():
            preds = model(**model.data_preprocessor(
                dict(inputs=[uint8_images(3, size, size)], data_samples=None), False),
                mode='predict')
        assert preds[0].pred_score.shape == (model.head.num_classes, )
    elif task == 'seg':
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample

        model.data_preprocessor.size = (size, size)  # the configs' 512 when size is 512
        # two crops: the pyramid pooling's batch norm needs more than one value
        samples = [SegDataSample(gt_sem_seg=PixelData(
            data=torch.randint(0, 150, (1, size, size)))) for _ in range(2)]
        data = model.data_preprocessor(
            dict(inputs=[uint8_images(3, size, size, seed=i) for i in range(2)],
                 data_samples=samples), True)
        losses = model(**data, mode='loss')
        model.eval()
        with torch.no_grad():
            pred = model.predict(data['inputs'][:1])[0]
        assert pred.seg_logits.data.shape == (150, size, size)
    else:
        from mmaction.structures import ActionDataSample
        samples = [ActionDataSample().set_gt_label(i) for i in (1, 2)]
        data = model.data_preprocessor(
            dict(inputs=[uint8_images(1, 3, 2, size, size, seed=i) for i in range(2)],
                 data_samples=samples), True)
        losses = model(**data, mode='loss')
        model.eval()
        with torch.no_grad():
            scores = model(data['inputs'], mode='tensor', stage='head')
        assert scores.shape == (2, model.cls_head.num_classes)
    assert all(torch.isfinite(v).all() for v in losses.values() if torch.is_tensor(v))
    return losses


def test_every_config_is_here():
    """The foundation configs tested here are on disk."""
    import glob
    found = {osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '*', '*', '*.py'))
             if re.search(r'_(dinov2-b14|clip-b16|siglip-b16)_', osp.basename(p))}
    assert set(CONFIGS) <= found


@pytest.mark.parametrize('path', sorted(CONFIGS))
def test_loads_with_the_family_settings_and_runs_shrunk(path):
    task, family, method = CONFIGS[path]
    with open(osp.join(ROOT, path)) as f:
        assert re.match(r'# \S.{10,}', f.readline()), 'first line: the model-zoo description'
    cfg = config(path)
    assert cfg.default_scope == SCOPES[task]
    expected = FAMILIES[family]
    preprocessor = cfg.model.data_preprocessor
    assert (preprocessor.mean, preprocessor.std) == (expected['mean'], expected['std'])
    backbone = cfg.model.backbone
    assert backbone.pretrained == expected['pretrained']
    assert (backbone.arch, backbone.patch_size) == ('b', expected['patch_size'])
    assert backbone.freeze_pretrained == (method != 'full')
    assert (cfg.model.get('rate_loss') is not None) == (method == 'dyt')
    if method == 'dyt':
        assert backbone.dispatch == 'mlp' and cfg.model.rate_loss.target_rate == 0.5
        assert backbone.adapter_dim == (8 if task == 'cls' else 64)
    else:
        assert backbone.dispatch is None
    if task == 'cls':  # VTAB-1K
        assert cfg.model.head.in_channels == 768 and cfg.model.head.num_classes == 100
        assert preprocessor.to_rgb
        assert cfg.optim_wrapper.optimizer.lr == (1e-4 if method == 'full' else 1e-3)
    elif task == 'seg':
        assert (backbone.img_size, backbone.out_indices) == (518, (3, 5, 7, 11))
        assert preprocessor.bgr_to_rgb and preprocessor.size == (512, 512)
        assert cfg.model.test_cfg.crop_size == (512, 512)
    else:
        assert cfg.model.cls_head.in_channels == 768 and 'proj_dims' not in backbone

    torch.manual_seed(0)
    model = build(path)
    trainable = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    keys = TRAINABLE[method]
    if keys is None:
        assert trainable == {n for n, _ in model.backbone.named_parameters()}
    else:
        assert all(any(k in n for k in keys) for n in trainable)
        assert bool(trainable) == bool(keys)
    size = 512 if (task, method) == ('seg', 'dyt') else None
    losses = run_forwards(model, task, expected['patch_size'], size)
    assert ('loss_rate' in losses) == (method == 'dyt')


def assert_dinov2(backbone, task):
    assert backbone.patch_embed.proj.kernel_size == (14, 14)
    assert backbone.patch_embed.proj.bias is not None
    assert backbone.class_token and backbone.num_registers == 0
    assert isinstance(backbone.norm_pre, torch.nn.Identity)
    for block in backbone.blocks:
        assert isinstance(block.ls1, LayerScale) and isinstance(block.ls2, LayerScale)
        assert block.ls1.gamma.shape == (48, )
        assert float(block.ls1.gamma.mean()) == pytest.approx(1e-5)
        assert type(block.mlp.act) is torch.nn.GELU and block.mlp.act.approximate == 'none'
    if task == 'seg':  # 512 crops padded to 518: the release's 37 x 37 grid
        assert backbone.patch_resolution == (37, 37)


def assert_clip(backbone):
    assert isinstance(backbone.norm_pre, torch.nn.LayerNorm) and backbone.norm_pre.eps == 1e-5
    assert backbone.patch_embed.proj.bias is None  # CLIP's conv1 has no bias
    assert backbone.class_token and not hasattr(backbone, 'proj')
    for block in backbone.blocks:
        assert isinstance(block.mlp.act, QuickGELU)
        assert block.norm1.eps == block.norm2.eps == 1e-5
        assert isinstance(block.ls1, torch.nn.Identity)
    assert backbone.norm.eps == 1e-5


def assert_siglip(backbone):
    assert not backbone.class_token and not hasattr(backbone, 'cls_token')
    assert backbone.num_fixed_tokens == 0  # every token is a patch, dispatchable
    assert backbone.out_type == 'map' and hasattr(backbone, 'attn_pool')
    assert backbone.pos_embed.shape[1] == 4  # 2 x 2 patches, no class token row
    for block in backbone.blocks:
        assert type(block.mlp.act) is torch.nn.GELU
        assert isinstance(block.ls1, torch.nn.Identity)


@pytest.mark.parametrize('path', [
    'configs/cls/dyt/dyt-r0.5-d8_dinov2-b14_vtab1k.py',
    'configs/seg/dyt/dyt-r0.5_dinov2-b14_upernet_ade20k-512x512.py',
    'configs/video/dyt/dyt-r0.5_clip-b16_u8_ssv2.py',
    'configs/cls/dyt/dyt-r0.5-d8_siglip-b16_vtab1k.py'])
def test_built_backbone_is_the_family(path):
    task, family, _ = CONFIGS[path]
    backbone = build(path).backbone
    if family == 'dinov2':
        assert_dinov2(backbone, task)
    elif family == 'clip':
        assert_clip(backbone)
    else:
        assert_siglip(backbone)
    # LayerScale and the attention pooling are release weights: frozen
    frozen = {n for n, p in backbone.named_parameters() if not p.requires_grad}
    assert all(f'blocks.{i}.ls1.gamma' in frozen for i in range(2)) if family == 'dinov2' else True
    assert all(n in frozen for n, _ in backbone.named_parameters() if n.startswith('attn_pool'))


@pytest.mark.parametrize('path, change, message', [
    ('configs/cls/dyt/dyt-r0.5-d8_siglip-b16_vtab1k.py', dict(token_reduction=dict(
        type='tome', r=8)), 'class_token=False'),
    ('configs/cls/full/full_dinov2-b14_vtab1k.py', dict(
        num_registers=4, token_reduction=dict(type='evit', keep_rate=0.7)), 'register tokens'),
    ('configs/cls/vpt/vpt-deep10_dinov2-b14_vtab1k.py', dict(token_reduction=dict(
        type='tome', r=8)), 'VPT prompts'),
    ('configs/cls/linear/linear_siglip-b16_vtab1k.py', dict(rel_pos_bias=True),
     'rel_pos_bias'),
])
def test_refused_combinations_name_both(path, change, message):
    """What docs/foundation_models.md says does not go with a family."""
    cfg = config(path)
    model = shrink(cfg, 'cls')
    model.backbone.update(change)
    with DefaultScope.overwrite_default_scope('mmpretrain'), \
            pytest.raises(ValueError, match=message):
        registry('cls').build(model)


def test_dinov2_with_registers_and_token_reduction_without():
    """The ``_reg4_`` release (docs): registers with DyT and a linear probe;
    ToMe on plain DINOv2."""
    for path, change in (
            ('configs/cls/dyt/dyt-r0.5-d8_dinov2-b14_vtab1k.py', dict(num_registers=4)),
            ('configs/cls/full/full_dinov2-b14_vtab1k.py',
             dict(token_reduction=dict(type='tome', r=1)))):
        model = shrink(config(path), 'cls')
        model.backbone.update(change)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            built = registry('cls').build(model)
        run_forwards(built, 'cls', 14)


# ---- the releases' architectures, through the configs' own hf-hub names ----
timm_release = {
    # config -> (timm model of the release's architecture, shrunk image size)
    'configs/cls/linear/linear_dinov2-b14_vtab1k.py': ('vit_base_patch14_dinov2', 28),
    'configs/seg/linear/linear_dinov2-b14_upernet_ade20k-512x512.py': (
        'vit_base_patch14_dinov2', 518),
    'configs/cls/linear/linear_siglip-b16_vtab1k.py': ('vit_base_patch16_siglip_224', 32),
    'configs/video/full/full_clip-b16_8x16x1_k400.py': ('vit_base_patch16_clip_quickgelu_224',
                                                        32),
}


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty offline Hub cache for this process."""
    from huggingface_hub import constants
    hub_dir = tmp_path / 'hub'
    hub_dir.mkdir()
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(hub_dir))
    monkeypatch.setattr(constants, 'HF_HOME', str(tmp_path))
    monkeypatch.setattr(constants, 'HF_HUB_OFFLINE', True)
    return hub_dir


def cache_weights(hub_dir, repo_id, state, sha='0' * 40):
    """``state`` as the repo's ``model.safetensors`` in the Hub cache layout."""
    from safetensors.torch import save_file
    snapshot = hub_dir / ('models--' + repo_id.replace('/', '--')) / 'snapshots' / sha
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / 'model.safetensors'))
    refs = snapshot.parent.parent / 'refs'
    refs.mkdir()
    (refs / 'main').write_text(sha)


@pytest.mark.parametrize('path', sorted(timm_release))
def test_release_architecture_loads_through_the_hub_name(path, hub_cache):
    timm = pytest.importorskip('timm')
    name, size = timm_release[path]
    task, family, _ = CONFIGS[path]
    torch.manual_seed(0)
    head = dict(num_classes=32) if family == 'clip' else dict(num_classes=0)  # CLIP: projection
    reference = timm.create_model(name, pretrained=False, img_size=size, embed_dim=48,
                                  depth=4 if task == 'seg' else 2, num_heads=3, mlp_ratio=2.0,
                                  **head).eval()
    with torch.no_grad():
        for param in reference.parameters():
            param.normal_(std=0.2)
    repo_id = FAMILIES[family]['pretrained'][len('hf-hub:'):]
    cache_weights(hub_cache, repo_id, reference.state_dict())

    model = build(path, pretrained=FAMILIES[family]['pretrained'])
    backbone = model.backbone
    backbone.init_weights()  # refuses missing or unplaced release weights
    backbone.eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        expected = reference.forward_features(x)
        if task == 'seg':  # the 37 x 37 release grid loads as is
            assert torch.equal(backbone.pos_embed, reference.pos_embed)
            ours = backbone(x[..., :512, :512])[-1]  # padded back to 518 by the backbone
            assert ours.shape == (1, 48, 37, 37)
            return
        if family == 'clip':  # per frame, every token after ln_post
            ours = backbone(x[:, :, None])[:, 0]
        elif family == 'siglip':  # the attention-pooled image feature
            ours = backbone(x)[0]
            expected = reference.forward_head(expected, pre_logits=True)
        else:  # the class token after the final norm
            ours = backbone(x)[0]
            expected = expected[:, 0]
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=1e-4)


# ---- full-size trainable parameters (docs/foundation_models.md) ----
FULL_SIZE_TRAINABLE = {
    # config -> trainable backbone parameters (pretrained=None, full size)
    'configs/cls/dyt/dyt-r0.5-d8_dinov2-b14_vtab1k.py': 165996,  # 12 x (2 x 768 x 8 + 776 + 769)
    'configs/cls/dyt/dyt-r0.5-d8_siglip-b16_vtab1k.py': 165996,
    'configs/seg/dyt/dyt-r0.5_dinov2-b14_upernet_ade20k-512x512.py': 1198860,  # d=64
    'configs/video/dyt/dyt-r0.5_clip-b16_8x16x1_k400.py': 1198860,
}


def full_size_trainable(path):
    cfg = config(path)
    backbone = dict(cfg.model.backbone, pretrained=None)
    with DefaultScope.overwrite_default_scope(SCOPES[CONFIGS[path][0]]):
        model = registry(CONFIGS[path][0]).build(backbone)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize('path', sorted(FULL_SIZE_TRAINABLE))
def test_full_size_dyt_trainable_parameters_are_documented(path):
    count = full_size_trainable(path)
    assert count == FULL_SIZE_TRAINABLE[path]
    name = osp.splitext(osp.basename(path))[0]
    with open(DOC) as f:
        rows = [line for line in f if line.startswith(f'| {name} |')]
    assert rows and f'{count:,}' in rows[0], f'{name}: {count:,} not in {DOC}'
