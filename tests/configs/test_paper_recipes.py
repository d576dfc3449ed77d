"""Recipes as the papers and the reference code ran them: the
parameter and FLOPs figures of the Dyn-Adapter baselines against the paper's
Tables 1, 2 and 4 (real ViT-B/16 configs), and one check per recipe
setting."""
import math
import os.path as osp

import pytest
import torch

pytest.importorskip('mmpretrain')

from mmengine.config import Config  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

from mmdyt.models.flops import flops_convention  # noqa: E402
from mmdyt.models.heads.early_exit import ExitHead, mlp_head_width  # noqa: E402
from mmdyt.models.petl import merge_petl  # noqa: E402
from mmdyt.models.record import ForwardRecord  # noqa: E402
from tiny_dyt import tiny_vit_cfg  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS = osp.join(ROOT, 'configs', 'cls')
#: RepAdapter's per-task scale s (its configs/repblock/<task>.yaml).
REPADAPTER_SCALES = dict(
    caltech101=5, cifar=0.1, clevr_count=0.5, clevr_dist=0.1, diabetic_retinopathy=0.1,
    dmlab=5, dsprites_loc=5, dsprites_ori=0.1, dtd=1, eurosat=1, kitti=5,
    oxford_flowers102=0.5, oxford_iiit_pet=0.1, patch_camelyon=1, resisc45=5,
    smallnorb_azi=10, smallnorb_ele=1, sun397=0.1, svhn=10)


def config(path):
    return Config.fromfile(osp.join(ROOT, path))


def vit_b_backbone(path):
    """The backbone of a real ViT-B/16 config (random weights)."""
    from mmpretrain.registry import MODELS
    backbone = config(path).model.backbone
    backbone.pretrained = None
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(backbone)


def trainable(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@torch.no_grad()
def gflops(backbone, convention='mmdyt'):
    """Per-image GFLOPs of the backbone at 224x224 (merged PETL where it
    merges)."""
    merge_petl(backbone)
    record = ForwardRecord()
    backbone.eval()(torch.zeros(1, 3, 224, 224), record=record)
    with flops_convention(convention):
        return backbone.flops(record).item() / 1e9


@pytest.fixture(scope='module')
def dense():
    return vit_b_backbone('configs/cls/dyn_adapter/adapter_vit-b16_vtab1k.py'
                          ).__class__(arch='b', dispatch=None, adapter_dim=None)


def test_dense_vit_b_under_both_conventions(dense):
    """mmdyt counts 17.58 G (attention matmuls and LayerNorms included); the
    Dyn-Adapter paper's 16.8 G (Tables 1, 2, 4) is the linear layers and the
    patch embedding: 16.85 G."""
    assert round(gflops(dense), 2) == 17.58
    paper = gflops(dense, 'paper')
    assert math.floor(paper * 10) / 10 == 16.8
    assert round(paper * 1e9) == 196 * 768 * 768 + 12 * 197 * (4 * 768 * 768 + 2 * 768 * 3072)


@pytest.mark.parametrize('path,params,params_weights_only,extra_gflops', [
    # Table 1 / 4: Adapter 0.16 M, +0.03 G (Table 2), one d=8 adapter per block
    ('configs/cls/dyn_adapter/adapter_vit-b16_vtab1k.py', 156768, 147456, 0.029),
    # LoRA 0.29 M on q and v (rank 8), merged for inference: +0 G
    ('configs/cls/dyn_lora/lora_vit-b16_vtab1k.py', 294912, 294912, 0.0),
    # RepAdapter 0.22 M counts the weights only (RepAdapter's own count); merged: +0 G
    ('configs/cls/dyn_repadapter/repadapter_vit-b16_vtab1k.py', 239808, 221184, 0.0),
])
def test_baselines_match_the_papers_tables(path, params, params_weights_only, extra_gflops,
                                           dense):
    backbone = vit_b_backbone(path)
    assert trainable(backbone) == params
    assert sum(p.numel() for n, p in backbone.named_parameters()
               if p.requires_grad and not n.endswith('bias')) == params_weights_only
    paper_figure = {156768: 0.16, 294912: 0.29, 239808: 0.22}[params]
    assert round(params_weights_only / 1e6, 2) == paper_figure or \
        round(params / 1e6, 2) == paper_figure
    extra = gflops(backbone, 'paper') - gflops(dense, 'paper')
    assert extra == pytest.approx(extra_gflops, abs=5e-4)


def test_fused_qkv_lora_is_an_option_with_the_same_count():
    cfg = config('configs/cls/dyn_lora/lora_vit-b16_vtab1k.py')
    assert cfg.model.backbone.petl.targets == ['q', 'v']
    fused = vit_b_backbone('configs/cls/dyn_lora/lora_vit-b16_vtab1k.py').__class__(
        arch='b', dispatch=None, adapter_dim=None,
        petl=dict(type='lora', rank=8, targets=['qkv']))
    assert trainable(fused) == 294912  # A shared by q, k, v; B 3x taller


def test_early_heads_are_of_the_papers_order_on_cifar():
    """Dyn-Adapter heads on VTAB-1K cifar (K=100): MLP heads heavier than the
    linear ones, the three early heads 0.30 M (the 19-task mean is 0.157 M,
    tests/models/heads)."""
    cfg = config('configs/cls/dyn_adapter/dyn-adapter_vit-b16_vtab1k.py')
    assert cfg.model.num_classes == 100 and cfg.model.heads is None
    width = mlp_head_width(768, 100)
    mlp, linear = ExitHead(768, 100, type='mlp'), ExitHead(768, 100)
    assert mlp.hidden.out_features == width == 133
    assert mlp.num_parameters() > linear.num_parameters()
    assert round((2 * mlp.num_parameters() + linear.num_parameters()) / 1e6, 2) == 0.31


def test_repadapter_recipe_of_the_reference_code():
    for path in ('configs/cls/dyn_repadapter/dyn-repadapter_vit-b16_vtab1k.py',
                 'configs/cls/dyn_adapter/dyn-adapter_vit-b16_food101-16shot.py',
                 'configs/cls/dyn_lora/lora_vit-b16_vtab1k.py'):
        cfg = config(path)
        assert cfg.model.backbone.drop_path_rate == 0.1
        warmup, cosine = cfg.param_scheduler
        assert (warmup.type, warmup.end, cosine.begin, cosine.T_max, cosine.eta_min) == (
            'LinearLR', 10, 10, 90, 1e-5)
    cfg = config('configs/cls/dyn_repadapter/dyn-repadapter_vit-b16_vtab1k.py')
    assert cfg.model.backbone.petl.scale == 0.1  # its task, cifar
    assert {task: opts['model.backbone.petl.scale']
            for task, opts in cfg.vtab_task_options.items()} == REPADAPTER_SCALES
    from mmdyt.datasets import VTAB1K_TASKS
    assert set(REPADAPTER_SCALES) == set(VTAB1K_TASKS)


def test_few_shot_recipe_of_the_reference_code():
    cfg = config('configs/cls/dyn_repadapter/dyn-repadapter_vit-b16_stanford_cars-16shot.py')
    assert cfg.train_dataloader.batch_size == 64
    steps = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert list(steps) == ['LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip',
                           'RandAugment', 'RandomErasing', 'PackInputs']
    rand = steps['RandAugment']  # timm rand-m9-mstd0.5-inc1
    assert (rand.policies, rand.num_policies, rand.total_level, rand.magnitude_level,
            rand.magnitude_std) == ('timm_increasing', 2, 10, 9, 0.5)
    assert steps['RandomErasing'].erase_prob == 0.25 and steps['RandomErasing'].mode == 'rand'
    augments = cfg.data_preprocessor.batch_augments.augments
    assert [(a.type, a.alpha) for a in augments] == [('Mixup', 0.8), ('CutMix', 1.0)]
    assert cfg.data_preprocessor.num_classes == cfg.model.num_classes == 196
    assert (cfg.model.loss.type, cfg.model.loss.label_smooth_val) == ('LabelSmoothLoss', 0.1)


def test_early_exit_losses_take_the_mixed_soft_targets():
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(
            type='EarlyExitClassifier', num_classes=3, exit_interval=2,
            loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
            backbone=tiny_vit_cfg(num_layers=4, dispatch=None, adapter_dim=None,
                                  petl=dict(type='houlsby'))))
    soft = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.4, 0.6]])
    samples = [DataSample().set_gt_label(0).set_gt_score(s) for s in soft]
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    losses = model.loss(x, samples)
    logits = model(x)
    smoothed = soft * 0.9 + 0.1 / 3
    for j in range(2):
        expected = -(smoothed * logits[j].log_softmax(-1)).sum(-1).mean()
        torch.testing.assert_close(losses[f'loss_exit{j}'], expected)


def test_self_distillation_variants_for_vtab_and_video():
    for path in ('configs/cls/dyt/dyt-distill-r0.5-d8_vit-b16_vtab1k.py',
                 'configs/video/dyt/dyt-distill-r0.5_vit-b16_u8_ssv2.py',
                 'configs/video/dyt/dyt-distill-r0.5_vit-b16_8x16x1_k400.py'):
        cfg = config(path)
        assert cfg.model.distill == dict(loss_weight=1.0, teacher_weight=1.0)
    for path in ('configs/cls/dyt/dyt-r0.5-d8_vit-b16_vtab1k.py',
                 'configs/video/dyt/dyt-r0.5_vit-b16_u8_ssv2.py'):
        assert config(path).model.get('distill') is None  # the paper's loss by default


def test_ssv2_randaugment_has_the_reference_magnitude():
    """timm's rand-m7-n4-mstd0.5-inc1: 4 ops of the increasing set, each
    application at p=0.5 with magnitude N(7, 0.5) of 10. One op, Rotate:
    7/10 x 30 = 21 degrees on average, spread 0.5/10 x 30 = 1.5 degrees,
    either sign."""
    pytest.importorskip('mmaction')
    import numpy as np
    from mmaction.registry import TRANSFORMS
    cfg = config('configs/video/_base_/datasets/ssv2_u8.py')
    types = [t.type for t in cfg.train_pipeline]
    assert types.index('ClipRandAugment') == types.index('CheckedDecordDecode') + 1
    step = next(t for t in cfg.train_pipeline if t.type == 'ClipRandAugment')
    with DefaultScope.overwrite_default_scope('mmaction'):
        aug = TRANSFORMS.build(step).randaugment
    assert aug.num_policies == 4
    assert [type(t).__name__ for t in aug.transforms] == [
        'AutoContrast', 'Equalize', 'Invert', 'Rotate', 'Posterize', 'Solarize', 'SolarizeAdd',
        'ColorTransform', 'Contrast', 'Brightness', 'Sharpness', 'Shear', 'Shear', 'Translate',
        'Translate']
    rotate = next(t for t in aug.transforms if type(t).__name__ == 'Rotate')
    assert (rotate.prob, rotate.random_negative_prob, rotate.pad_val) == (0.5, 0.5, 128)
    np.random.seed(0)
    degrees = np.array([rotate.random_magnitude() for _ in range(20000)])
    assert degrees.mean() == pytest.approx(0.7 * 30, abs=0.05)
    assert degrees.std() == pytest.approx(0.05 * 30, abs=0.05)
    assert 0 <= degrees.min() and degrees.max() <= 30


def test_video_head_has_the_reference_form_and_the_earlier_one_as_option():
    """Reference: no residual around the cross-attention, separate k / v
    LayerNorms; mmdyt's earlier form stays an option for its checkpoints."""
    pytest.importorskip('mmaction')
    from mmaction.registry import MODELS
    head_cfg = config('configs/video/_base_/models/dyt_vit-b16.py').model.cls_head
    head_cfg.update(in_channels=48, num_heads=3, num_classes=5)
    with DefaultScope.overwrite_default_scope('mmaction'):
        head = MODELS.build(head_cfg)
        earlier = MODELS.build(dict(head_cfg, residual=True, shared_kv_norm=True))
    attn = head.cross_attn
    assert (attn.residual, attn.shared_kv_norm) == (False, False)
    assert {'norm_k.weight', 'norm_v.weight'} <= set(attn.state_dict())
    assert (earlier.cross_attn.residual, earlier.cross_attn.shared_kv_norm) == (True, True)
    with pytest.raises(ValueError, match='residual=True, shared_kv_norm=True'):
        head.load_state_dict(earlier.state_dict())


def test_seg_dyt_configs_carry_the_relative_position_bias():
    for name in ('dyt-r0.5_vit-b16_upernet_ade20k-512x512.py',
                 'dyt-r0.5_vit-b16_upernet_coco-stuff164k-512x512.py',
                 'dyt-moe4-r0.5_vit-b16_upernet_ade20k-512x512.py',
                 'dyt-moe4-r0.5_vit-b16_upernet_coco-stuff164k-512x512.py'):
        backbone = config(f'configs/seg/dyt/{name}').model.backbone
        assert backbone.rel_pos_bias is True and backbone.img_size == 512


def test_image_recipe_of_the_reference_code():
    for name in ('cifar100', 'svhn'):
        cfg = config(f'configs/cls/_base_/datasets/{name}_bs128_rrc.py')
        steps = [(t.type, t.get('scale', t.get('crop_size'))) for t in
                 cfg.test_dataloader.dataset.pipeline]
        assert steps == [('ResizeEdge', 256), ('CenterCrop', 224), ('PackInputs', None)]
        assert 'RandomFlip' not in [t.type for t in cfg.train_dataloader.dataset.pipeline]
    for name in ('cifar100', 'svhn', 'food101'):
        cfg = config(f'configs/cls/_base_/datasets/{name}_bs128_rrc-flip.py')
        types = [t.type for t in cfg.train_dataloader.dataset.pipeline]
        assert types[-3:] == ['RandomResizedCrop', 'RandomFlip', 'PackInputs']


@pytest.mark.parametrize('name', ['cifar100', 'svhn', 'food101'])
def test_distill_configs_run_the_reference_image_recipe(name):
    """The -distill configs (the reference code's recipe): RandomResizedCrop
    224 + horizontal flip; test resize 256 + centre crop 224; the rest as the
    paper's config."""
    cfg = config(f'configs/cls/dyt/dyt-distill-r0.5_vit-b16_{name}.py')
    paper = config(f'configs/cls/dyt/dyt-r0.5_vit-b16_{name}.py')
    train = [(t.type, t.get('scale', t.get('prob'))) for t in
             cfg.train_dataloader.dataset.pipeline if t.type != 'LoadImageFromFile']
    assert train == [('RandomResizedCrop', 224), ('RandomFlip', 0.5), ('PackInputs', None)]
    assert cfg.train_dataloader.dataset.pipeline[-2].direction == 'horizontal'
    for loader in ('val_dataloader', 'test_dataloader'):
        test = [(t.type, t.get('scale', t.get('crop_size'))) for t in
                cfg[loader].dataset.pipeline if t.type != 'LoadImageFromFile']
        assert test == [('ResizeEdge', 256), ('CenterCrop', 224), ('PackInputs', None)]
        assert cfg[loader] == paper[loader]
    assert cfg.model.distill == dict(loss_weight=1.0, teacher_weight=1.0)
    assert paper.model.get('distill') is None
    cfg.model.pop('distill')
    assert cfg.model == paper.model
    assert cfg.optim_wrapper == paper.optim_wrapper and cfg.param_scheduler == paper.param_scheduler
    assert cfg.train_dataloader.batch_size == paper.train_dataloader.batch_size == 128


def test_vtab_table_turns_each_config_to_a_task_and_reports_as_asked():
    from train_runs import load_tool
    table = load_tool('analysis_tools/vtab_table')
    rep = config('configs/cls/dyn_repadapter/dyn-repadapter_vit-b16_vtab1k.py')
    options = table.task_options('svhn', 'root', rep)
    assert 'model.num_classes=10' in options and 'model.backbone.petl.scale=10.0' in options
    dyt = config('configs/cls/dyt/dyt-r0.5-d8_vit-b16_vtab1k.py')
    options = table.task_options('kitti', 'root', dyt)
    assert options[0] == 'model.head.num_classes=4' and not any('scale' in o for o in options)
    assert 'default_hooks.checkpoint.save_best=accuracy/top1' in table.REPORTS['best'][1]
    assert table.REPORTS['last'][1] == []
    assert table.format_table({}, 'best').startswith('Top-1: best validation accuracy')
    assert table.format_table({}).startswith('Top-1: accuracy of the last epoch')
