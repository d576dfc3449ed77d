"""Putting DyT into an existing OpenMMLab config: :func:`dyt_config`.

A toolbox config (mmpretrain ``ImageClassifier`` + ``VisionTransformer``,
mmseg ``EncoderDecoder`` + ``VisionTransformer`` with or without a neck,
mmaction2 ``Recognizer3D`` + VideoMAE ``VisionTransformer`` / ``TimeSformer``)
becomes its DyT version:

* the backbone is **replaced**, not merged (what ``_delete_=True`` does in a
  hand-written config): a new ``DyTVisionTransformer`` dict with the old
  backbone's size (mmpretrain's ``arch``, mmseg's ``embed_dims`` /
  ``num_layers`` / ``num_heads`` / ``mlp_ratio``), patch and image size,
  ``out_indices`` / ``out_type`` / ``final_norm``; settings of the old class
  DyT has no counterpart for are dropped (training-only ones: dropout,
  frozen stages) or refused (ones that change what the network computes);
* the new width goes to whatever reads the backbone (``in_channels`` of the
  neck or, without a neck, of the heads);
* the checkpoint moves into ``backbone.pretrained`` (mmseg's segmentor-level
  ``pretrained`` would otherwise stop mmseg with "both backbone and segmentor
  set pretrained weight");
* the model becomes the mmdyt task model (``DyTImageClassifier``,
  ``DyTEncoderDecoder``, ``DyTRecognizer3D``) with
  ``rate_loss=dict(type='ActivationRateLoss', ...)``;
* ``EfficiencyMetric`` joins the val / test evaluators,
  ``ActivationLoggerHook`` the custom hooks, ``mmdyt`` the custom imports;
* mmpretrain's pre-logits head (``VisionTransformerClsHead(hidden_dim=...)``,
  a wide layer trained from scratch) becomes a ``LinearClsHead``, with a
  warning;
* the data preprocessor's mean / std is checked against what the checkpoint
  expects (ImageNet-21k ViT ``.npz`` / timm in21k: mean = std = 127.5), a
  warning naming both when they differ, fixed with ``fix_norm=True``.

Video: mmaction2's VideoMAE ``VisionTransformer`` is a joint space-time ViT
on 2 x 16 x 16 tubelets with a fixed sinusoidal position embedding and no
class token; DyT's per-frame backbone can neither load its checkpoints nor
compute what it computes. Backbone and head are therefore both replaced, as
mmdyt's own video configs are built: ``FrameDyTVisionTransformer`` (an image
ViT applied frame by frame, image checkpoints) + ``CrossAttentionHead``.

Every change is recorded: :func:`dyt_config` appends one line per change to
``changes`` when given a list, else prints them through mmengine's logger;
the changes that need a look also go out as :class:`DyTConfigWarning`.
"""
import copy
import inspect
import re
import warnings

from mmengine.config import Config

__all__ = ['dyt_config', 'DyTConfigWarning', 'checkpoint_normalisation', 'IN21K_NORM',
           'IMAGENET_NORM']

#: mean / std (0-255 scale) of the original ImageNet-21k ViT weights
#: (``.npz``) and timm's in21k ViTs: inputs in [-1, 1].
IN21K_NORM = dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5])
#: mean / std of ImageNet-1k models (DeiT, MAE, DINOv2, the toolboxes' default).
IMAGENET_NORM = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
#: (substrings of a checkpoint's name (lower case), its mean / std, what it is).
CHECKPOINT_NORMS = (
    (('in21k', 'imagenet21k', 'imagenet-21k', 'imagenet_21k', 'augreg', 'jx_vit', '.npz'),
     IN21K_NORM, 'an ImageNet-21k ViT (original .npz / timm in21k)'),
    # timm's (and mmseg's / mmaction2's copies of) original ViT weights:
    # ImageNet-21k pretrained, normalised to [-1, 1] (DeiT's are deit_*).
    (re.compile(r'(^|[/_.-])vit_(tiny|small|base|large|huge)_patch\d+_\d+'), IN21K_NORM,
     "timm's ImageNet-21k-pretrained ViT weights (mean = std = 0.5 x 255)"),
    (('deit', 'mae', 'dinov2'), IMAGENET_NORM,
     'an ImageNet-1k-normalised ViT (DeiT / MAE / DINOv2)'),
)

#: Settings the converted backbone always gets, as mmdyt's configs have them.
DYT_DEFAULTS = dict(adapter_scale=0.1, tau=5.0, freeze_pretrained=True, skip_inactive=True)

#: model type -> (toolbox, its default scope, the mmdyt task model).
TASK_MODELS = {
    'ImageClassifier': ('mmpretrain', 'DyTImageClassifier'),
    'EncoderDecoder': ('mmseg', 'DyTEncoderDecoder'),
    'Recognizer3D': ('mmaction', 'DyTRecognizer3D'),
}


class DyTConfigWarning(UserWarning):
    """A conversion step that changes what the config trains or reads
    (pre-logits head replaced, normalisation that disagrees with the
    checkpoint, no checkpoint, a test-only config)."""


class _Log:
    """The list of changes; warnings are also issued as
    :class:`DyTConfigWarning`."""

    def __init__(self):
        self.lines = []

    def change(self, text):
        self.lines.append(text)

    def warn(self, text):
        self.lines.append('WARNING: ' + text)
        warnings.warn(text, DyTConfigWarning, stacklevel=3)


def _fmt(value):
    if isinstance(value, float):
        return f'{value:g}'
    return repr(value)


def _call(name, args):
    return f"{name}({', '.join(f'{k}={_fmt(v)}' for k, v in args.items())})"


def _shown(module):
    return {k: v for k, v in module.items() if k not in ('type', '_scope_')}


def _plain(value):
    """ConfigDict / dict / list -> plain containers (deep copy)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return copy.deepcopy(value)


def checkpoint_normalisation(checkpoint):
    """``(dict(mean, std), what)`` the checkpoint's name says its ViT was
    trained with, or ``(None, None)`` when the name does not tell (the file
    is not read)."""
    if not checkpoint:
        return None, None
    name = str(checkpoint).lower()
    for patterns, norm, what in CHECKPOINT_NORMS:
        if patterns.search(name) if hasattr(patterns, 'search') else any(
                p in name for p in patterns):
            return norm, what
    return None, None


# --------------------------------------------------------------------------
# reading the old backbone


def _signature_defaults(cls):
    params = inspect.signature(cls.__init__).parameters
    defaults = {k: p.default for k, p in params.items()
                if k != 'self' and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return defaults, any(p.kind == p.VAR_KEYWORD for p in params.values())


def _with_defaults(cls, old, where, handled):
    """The old backbone's arguments completed with ``cls``'s defaults;
    a key of ``old`` that ``cls`` does not take, or that the reader does not
    handle, is refused (named)."""
    defaults, _ = _signature_defaults(cls)
    given = {k: v for k, v in old.items() if k not in ('type', '_scope_')}
    unknown = sorted(set(given) - set(handled))
    if unknown:
        raise ValueError(f'{where}: {old["type"]} settings {unknown} have no DyT counterpart '
                         'that dyt_config knows; remove them from the config (or convert by '
                         'hand)')
    return {**{k: v for k, v in defaults.items() if k in handled}, **given}


def _norm_eps(norm_cfg, problems, where):
    norm_cfg = norm_cfg or {}
    if norm_cfg.get('type', 'LN') not in ('LN', 'LayerNorm'):
        problems.append(f"{where} norm_cfg type {norm_cfg.get('type')!r} (DyT: LayerNorm)")
    return norm_cfg.get('eps', 1e-5)


def _pretrained_from_init(init_cfg, reader):
    """(checkpoint, prefix) of a ``Pretrained`` init_cfg entry, or (None,
    None); the other entries are dropped (they initialise the old class's
    modules) and noted."""
    entries = [] if init_cfg is None else list(init_cfg) if isinstance(
        init_cfg, (list, tuple)) else [init_cfg]
    found = [e for e in entries if e.get('type') == 'Pretrained']
    others = [e.get('type') for e in entries if e.get('type') != 'Pretrained']
    if others:
        reader['dropped'].append(f'init_cfg {others} (initialisers of the old modules; DyT '
                                 'initialises its own and loads the checkpoint)')
    if found:
        return found[0].get('checkpoint'), found[0].get('prefix')
    return None, None


def _new_reader():
    return dict(settings={}, dropped=[], refused=[], checkpoint=None, prefix=None,
                checkpoint_note=None)


def _drop_if(reader, args, key, keep_value, why):
    if args.get(key, keep_value) != keep_value:
        reader['dropped'].append(f'{key}={_fmt(args[key])} ({why})')


def _read_mmpretrain_vit(old):
    """mmpretrain ``VisionTransformer``."""
    from mmpretrain.models.backbones import VisionTransformer
    handled = ('arch', 'img_size', 'patch_size', 'in_channels', 'out_indices', 'drop_rate',
               'drop_path_rate', 'qkv_bias', 'norm_cfg', 'final_norm', 'out_type',
               'with_cls_token', 'frozen_stages', 'interpolate_mode', 'layer_scale_init_value',
               'patch_cfg', 'layer_cfgs', 'pre_norm', 'init_cfg')
    args = _with_defaults(VisionTransformer, old, 'model.backbone', handled)
    reader = _new_reader()
    arch = args['arch']
    if isinstance(arch, str):
        key = arch.lower()
        if key not in VisionTransformer.arch_zoo:
            raise ValueError(f'model.backbone: unknown mmpretrain ViT arch {arch!r}')
        size = dict(VisionTransformer.arch_zoo[key])
    else:
        size = dict(arch)
    keys = ('embed_dims', 'num_layers', 'num_heads', 'feedforward_channels')
    if set(keys) - set(size):
        raise ValueError(f'model.backbone: arch {arch!r} lacks {sorted(set(keys) - set(size))}')
    extra = sorted(set(size) - set(keys))
    if extra:
        reader['refused'].append(f'arch settings {extra}')
    reader['size'] = {k: size[k] for k in keys}
    reader['size_source'] = f'arch={arch!r}'
    s = reader['settings']
    s.update(img_size=args['img_size'], patch_size=args['patch_size'],
             out_type=args['out_type'], out_indices=args['out_indices'],
             final_norm=args['final_norm'], drop_path_rate=args['drop_path_rate'],
             in_channels=args['in_channels'], qkv_bias=args['qkv_bias'],
             class_token=args['with_cls_token'], pre_norm=args['pre_norm'],
             layer_scale_init_value=args['layer_scale_init_value'],
             norm_eps=_norm_eps(args['norm_cfg'], reader['refused'], 'model.backbone'))
    if args['out_type'] == 'avg_featmap':
        s['pool_norm'] = True  # mmpretrain's ln2 after the average
    for key in ('patch_cfg', 'layer_cfgs'):
        if args[key]:
            reader['refused'].append(f'{key}={args[key]!r}')
    _drop_if(reader, args, 'drop_rate', 0.0, 'dropout after the position embedding; DyT '
             'has none')
    _drop_if(reader, args, 'frozen_stages', -1, 'DyT freezes every pretrained weight '
             '(freeze_pretrained=True)')
    _drop_if(reader, args, 'interpolate_mode', 'bicubic', 'DyT resizes the position '
             'embedding bicubically')
    reader['checkpoint'], reader['prefix'] = _pretrained_from_init(args['init_cfg'], reader)
    return reader


def _read_mmseg_vit(old):
    """mmseg ``VisionTransformer``."""
    from mmseg.models.backbones import VisionTransformer
    handled = ('img_size', 'patch_size', 'patch_pad', 'in_channels', 'embed_dims',
               'num_layers', 'num_heads', 'mlp_ratio', 'out_origin', 'out_indices', 'qkv_bias',
               'drop_rate', 'attn_drop_rate', 'drop_path_rate', 'with_cls_token',
               'output_cls_token', 'norm_cfg', 'act_cfg', 'patch_norm', 'patch_bias',
               'pre_norm', 'final_norm', 'interpolate_mode', 'num_fcs', 'norm_eval', 'with_cp',
               'frozen_exclude', 'pretrained', 'init_cfg')
    args = _with_defaults(VisionTransformer, old, 'model.backbone', handled)
    reader = _new_reader()
    embed_dims = args['embed_dims']
    reader['size'] = dict(embed_dims=embed_dims, num_layers=args['num_layers'],
                          num_heads=args['num_heads'],
                          feedforward_channels=int(embed_dims * args['mlp_ratio']))
    reader['size_source'] = (f"embed_dims={embed_dims}, num_layers={args['num_layers']}, "
                             f"num_heads={args['num_heads']}, mlp_ratio={args['mlp_ratio']}")
    out_indices = args['out_indices']
    if isinstance(out_indices, list):
        out_indices = tuple(out_indices)
    reader['settings'].update(
        img_size=args['img_size'], patch_size=args['patch_size'], out_type='featmap',
        out_indices=out_indices, final_norm=args['final_norm'],
        drop_path_rate=args['drop_path_rate'], in_channels=args['in_channels'],
        qkv_bias=args['qkv_bias'], class_token=args['with_cls_token'],
        pre_norm=args['pre_norm'],
        norm_eps=_norm_eps(args['norm_cfg'], reader['refused'], 'model.backbone'))
    refused = reader['refused']
    if args['patch_pad'] != 'corner':
        refused.append(f"patch_pad={args['patch_pad']!r} (DyT pads the bottom and right, "
                       "'corner')")
    if (args['act_cfg'] or {}).get('type', 'GELU') != 'GELU':
        refused.append(f"act_cfg={args['act_cfg']!r} (DyT: GELU)")
    for key, keep in (('out_origin', False), ('output_cls_token', False),
                      ('patch_norm', False), ('num_fcs', 2)):
        if args[key] != keep:
            refused.append(f'{key}={args[key]!r}')
    if not args['patch_bias']:
        reader['dropped'].append(
            "patch_bias=False (mmseg's default, which leaves the checkpoint's patch-embedding "
            "bias unused; DyT's patch embedding has the bias and loads it)")
    _drop_if(reader, args, 'drop_rate', 0.0, 'dropout; DyT has none')
    _drop_if(reader, args, 'attn_drop_rate', 0.0, 'attention dropout; DyT has none')
    _drop_if(reader, args, 'interpolate_mode', 'bicubic', 'DyT resizes the position '
             'embedding bicubically')
    _drop_if(reader, args, 'norm_eval', False, 'DyT has no BatchNorm')
    _drop_if(reader, args, 'with_cp', False, 'no activation checkpointing in DyT')
    _drop_if(reader, args, 'frozen_exclude', ['all'], 'DyT freezes every pretrained '
             'weight (freeze_pretrained=True)')
    checkpoint, prefix = _pretrained_from_init(args['init_cfg'], reader)
    reader['checkpoint'] = args['pretrained'] or checkpoint
    reader['prefix'] = None if args['pretrained'] else prefix
    return reader


def _read_video_vit(old):
    """mmaction2's VideoMAE ``VisionTransformer`` or ``TimeSformer``: only
    the size is carried (the per-frame DyT ViT replaces the model)."""
    reader = _new_reader()
    if old['type'] == 'VisionTransformer':
        from mmaction.models.backbones import VisionTransformer as cls
        size_keys = ('embed_dims', 'depth', 'num_heads', 'mlp_ratio')
        handled = ('img_size', 'patch_size', 'in_channels', 'drop_path_rate', *size_keys,
                   'qkv_bias', 'qk_scale', 'drop_rate', 'attn_drop_rate', 'norm_cfg',
                   'init_values', 'use_learnable_pos_emb', 'num_frames', 'tubelet_size',
                   'use_mean_pooling', 'pretrained', 'return_feat_map', 'init_cfg')
        args = _with_defaults(cls, old, 'model.backbone', handled)
        num_layers, ratio = args['depth'], args['mlp_ratio']
        what = ("mmaction2's VideoMAE VisionTransformer (joint space-time attention over "
                f"{args['tubelet_size']} x {args['patch_size']} x {args['patch_size']} tubelets, "
                'fixed sinusoidal positions, no class token)')
        if args['pretrained'] or _pretrained_from_init(args['init_cfg'], _new_reader())[0]:
            reader['checkpoint_note'] = (
                f"the VideoMAE checkpoint {args['pretrained'] or args['init_cfg']!r} is a 3-D "
                'tubelet model that the per-frame ViT cannot load: not carried')
    else:
        from mmaction.models.backbones import TimeSformer as cls
        handled = ('num_frames', 'img_size', 'patch_size', 'pretrained', 'embed_dims',
                   'num_heads', 'num_transformer_layers', 'in_channels', 'dropout_ratio',
                   'transformer_layers', 'attention_type', 'norm_cfg', 'init_cfg')
        args = _with_defaults(cls, old, 'model.backbone', handled)
        num_layers, ratio = args['num_transformer_layers'], 4
        what = (f"mmaction2's TimeSformer (attention_type={args['attention_type']!r}, its own "
                'temporal layers)')
        # TimeSformer starts from a 2-D ImageNet ViT: that checkpoint fits the per-frame ViT.
        reader['checkpoint'] = args['pretrained']
    embed_dims = args['embed_dims']
    reader['size'] = dict(embed_dims=embed_dims, num_layers=num_layers,
                          num_heads=args['num_heads'],
                          feedforward_channels=int(embed_dims * ratio))
    reader['size_source'] = (f'embed_dims={embed_dims}, layers={num_layers}, '
                             f"num_heads={args['num_heads']}, mlp_ratio={ratio}")
    reader['settings'].update(img_size=args['img_size'], patch_size=args['patch_size'],
                              in_channels=args['in_channels'])
    if args.get('drop_path_rate'):
        reader['settings']['drop_path_rate'] = args['drop_path_rate']
    carried = set(reader['settings']) | {'embed_dims', 'depth', 'num_heads', 'mlp_ratio',
                                         'num_transformer_layers', 'pretrained', 'init_cfg'}
    rest = {k: v for k, v in old.items() if k not in carried | {'type', '_scope_'}}
    reader['replaced'] = what
    if rest:
        reader['dropped'].append(f'{_call(old["type"], rest)} settings (the model is replaced)')
    return reader


#: (toolbox, old backbone type) -> reader.
READERS = {
    ('mmpretrain', 'VisionTransformer'): _read_mmpretrain_vit,
    ('mmseg', 'VisionTransformer'): _read_mmseg_vit,
    ('mmaction', 'VisionTransformer'): _read_video_vit,
    ('mmaction', 'TimeSformer'): _read_video_vit,
}


# --------------------------------------------------------------------------
# the new backbone


def _dyt_arguments(cls):
    defaults, _ = _signature_defaults(cls)
    return defaults


def _arch_value(size):
    """A DyT arch name when the size is one of DyT's, else the dict."""
    from .models.backbones.dyt_vit import ARCHS
    for name, settings in ARCHS.items():
        if settings == size:
            return name
    return dict(size)


def _resolve_size(arch):
    from .models.backbones.dyt_vit import ARCH_ALIASES, ARCH_KEYS, ARCHS
    if isinstance(arch, str):
        key = ARCH_ALIASES.get(arch.lower(), arch.lower())
        if key not in ARCHS:
            raise ValueError(f'arch must be one of {sorted(ARCHS)} or a dict, got {arch!r}')
        return dict(ARCHS[key])
    if not isinstance(arch, dict) or set(arch) != set(ARCH_KEYS):
        raise ValueError(f'a custom arch must be a dict with keys {sorted(ARCH_KEYS)}, got '
                         f'{arch!r}')
    return dict(arch)


def _build_backbone(reader, video, dispatch, adapter_dim, num_experts, pretrained,
                    overrides, log):
    from .models.backbones import DyTVisionTransformer
    dyt_defaults = _dyt_arguments(DyTVisionTransformer)
    type_name = 'FrameDyTVisionTransformer' if video else 'DyTVisionTransformer'
    bad = sorted(set(overrides) - set(dyt_defaults) - {'arch'})
    if video:
        bad += sorted({'out_type', 'out_indices'} & set(overrides))
    if 'type' in overrides:
        bad.append('type')
    if bad:
        allowed = set(dyt_defaults) - ({'out_type', 'out_indices'} if video else set())
        raise ValueError(f'{type_name} has no argument(s) {bad}; its arguments: '
                         f'{sorted(allowed)}')
    settings = dict(reader['settings'])
    if 'pool_norm' in settings and 'pool_norm' not in dyt_defaults:
        reader['refused'].append("out_type='avg_featmap' with mmpretrain's LayerNorm after "
                                 'the average (this DyTVisionTransformer has no pool_norm)')
        settings.pop('pool_norm')
    if reader['refused']:
        raise ValueError(
            f'model.backbone: {reader["old_type"]} has '
            + '; '.join(dict.fromkeys(reader['refused']))
            + ', which DyTVisionTransformer has no setting for (refused rather than dropped: '
            'the converted network would compute something else)')
    size = reader['size']
    backbone = dict(type=type_name, arch=_arch_value(size))
    always = ('img_size', 'patch_size', 'out_type', 'out_indices', 'final_norm',
              'drop_path_rate')
    for key, value in settings.items():
        if key in always or value != dyt_defaults.get(key):
            backbone[key] = value
    backbone.update(dispatch=dispatch, adapter_dim=adapter_dim, num_experts=num_experts,
                    **DYT_DEFAULTS)
    # the checkpoint: given > the old config's
    checkpoint, prefix = reader['checkpoint'], reader['prefix']
    if reader.get('checkpoint_note'):
        log.change(f'model.backbone: {reader["checkpoint_note"]}')
    if pretrained is not None:
        if checkpoint and checkpoint != pretrained:
            log.change(f'model.backbone.pretrained: {pretrained!r} (given) replaces the '
                       f"config's {checkpoint!r}")
        checkpoint, prefix = pretrained, None
    if prefix:
        backbone['init_cfg'] = dict(type='Pretrained', checkpoint=checkpoint, prefix=prefix)
    else:
        backbone['pretrained'] = checkpoint
    for key, value in overrides.items():
        backbone[key] = value
    if 'arch' in overrides:
        size = _resolve_size(overrides['arch'])
    return backbone, size


# --------------------------------------------------------------------------
# the rest of the model and the config


def _set_width(module, key, width):
    """``module[key]`` (an int or a list of ints) set to ``width``; returns
    the old value when it changed, else None."""
    old = module.get(key)
    if old is None:
        return None
    new = [width] * len(old) if isinstance(old, (list, tuple)) else width
    if isinstance(old, tuple):
        new = tuple(new)
    if new == old:
        return None
    module[key] = new
    return old


def _carry_width(model, width, log):
    """The backbone's width into what reads it: the neck, and the heads
    (mmseg's decode / auxiliary heads, mmpretrain's head) unless a neck with
    its own ``out_channels`` (``MultiLevelNeck``) stands between; a neck
    that keeps the width (``Feature2Pyramid``, ``GlobalAveragePooling``)
    passes it on."""
    neck = model.get('neck')
    if neck:
        necks = neck if isinstance(neck, list) else [neck]
        first = necks[0]
        for key in ('in_channels', 'embed_dim'):  # Feature2Pyramid: embed_dim
            old = _set_width(first, key, width)
            if old is not None:
                log.change(f'model.neck.{key}: {old!r} -> {first[key]!r} (the backbone width)')
        if any('out_channels' in n for n in necks):
            return
    for name in ('head', 'decode_head', 'auxiliary_head'):
        heads = model.get(name)
        if not heads:
            continue
        for i, head in enumerate(heads if isinstance(heads, list) else [heads]):
            where = f'model.{name}' + (f'[{i}]' if isinstance(heads, list) else '')
            old = _set_width(head, 'in_channels', width)
            if old is not None:
                log.change(f'{where}.in_channels: {old!r} -> {head["in_channels"]!r} (the '
                           'backbone width)')


def _classification_head(model, width, keep_pre_logits, log):
    head = model.get('head') or {}
    hidden = head.get('hidden_dim')
    if head.get('type') != 'VisionTransformerClsHead' or not hidden:
        return
    num_classes = head.get('num_classes')
    extra = width * hidden + hidden
    if keep_pre_logits:
        log.warn(f'model.head: VisionTransformerClsHead(hidden_dim={hidden}) kept '
                 f'(keep_pre_logits): its {width} -> {hidden} pre-logits layer adds {extra:,} '
                 'parameters trained from scratch to the tuned ones')
        return
    new = dict(type='LinearClsHead', num_classes=num_classes, in_channels=width)
    for key in ('loss', 'topk', 'cal_acc', '_scope_'):
        if key in head:
            new[key] = head[key]
    dropped = {k: v for k, v in head.items()
               if k not in new and k not in ('type', 'hidden_dim', 'in_channels')}
    model['head'] = new
    log.warn(f'model.head: VisionTransformerClsHead(hidden_dim={hidden}) replaced by '
             f'{_call("LinearClsHead", _shown(new))}: its '
             f'{width} -> {hidden} pre-logits layer (Linear + Tanh, {extra:,} parameters, '
             'trained from scratch) would outweigh the DyT adapters among the tuned weights; '
             'keep_pre_logits=True (--keep-pre-logits) keeps it'
             + (f'; dropped {dropped}' if dropped else ''))


def _video_head(model, width, num_heads, log):
    old = model.get('cls_head') or {}
    new = dict(type='CrossAttentionHead', num_classes=old.get('num_classes'),
               in_channels=width, num_heads=num_heads,
               average_clips=old.get('average_clips') or 'prob')
    carried = ('loss_cls', 'label_smooth_eps', 'topk', 'multi_class', 'dropout_ratio',
               'init_std', '_scope_')
    for key in carried:
        if key in old:
            new[key] = old[key]
    dropped = sorted(set(old) - set(new) - {'type', 'in_channels', 'num_classes',
                                            'average_clips'})
    model['cls_head'] = new
    log.change(f"model.cls_head: {old.get('type')} replaced (_delete_=True) by "
               f"{_call('CrossAttentionHead', _shown(new))}"
               ': the query token attends to the tokens of every frame (DyT Sec. 4.5)'
               + (f'; not carried: {dropped}' if dropped else ''))


def _add_evaluator(cfg, log):
    for name in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg.get(name)
        if evaluator is None:
            continue
        metrics = evaluator if isinstance(evaluator, list) else [evaluator]
        if isinstance(evaluator, dict) and 'metrics' in evaluator:  # an Evaluator dict
            metrics = evaluator['metrics']
            metrics = metrics if isinstance(metrics, list) else [metrics]
            if not any(m.get('type') == 'EfficiencyMetric' for m in metrics):
                evaluator['metrics'] = metrics + [dict(type='EfficiencyMetric')]
                log.change(f'{name}.metrics: + EfficiencyMetric (GFLOPs, activation rates)')
            continue
        if any(m.get('type') == 'EfficiencyMetric' for m in metrics):
            continue
        cfg[name] = list(metrics) + [dict(type='EfficiencyMetric')]
        log.change(f'{name}: + EfficiencyMetric (GFLOPs, activation rates)')


def _add_runtime(cfg, log):
    imports = cfg.get('custom_imports')
    if imports is None:
        cfg['custom_imports'] = dict(imports=['mmdyt'], allow_failed_imports=False)
        log.change("custom_imports: dict(imports=['mmdyt'], allow_failed_imports=False)")
    else:
        names = imports.get('imports', [])
        names = [names] if isinstance(names, str) else list(names)
        if 'mmdyt' not in names:
            imports['imports'] = names + ['mmdyt']
            log.change("custom_imports.imports: + 'mmdyt'")
        if imports.get('allow_failed_imports', False):
            log.warn('custom_imports.allow_failed_imports=True kept: a failed import of mmdyt '
                     'would then only show as an unknown DyTVisionTransformer')
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == 'ActivationLoggerHook' for h in hooks):
        cfg['custom_hooks'] = hooks + [dict(type='ActivationLoggerHook')]
        log.change('custom_hooks: + ActivationLoggerHook (rate_layer{i}, activation_rate, '
                   'gflops of every training iteration in the log)')


def _preprocessors(cfg):
    """The data preprocessor dicts that hold mean / std, the one the model
    uses first (the model's own; mmpretrain's top-level one when the model
    has none)."""
    model = cfg['model']
    found = []
    if isinstance(model.get('data_preprocessor'), dict):
        found.append(('model.data_preprocessor', model['data_preprocessor']))
    if isinstance(cfg.get('data_preprocessor'), dict):
        found.append(('data_preprocessor', cfg['data_preprocessor']))
    return found


def _close(a, b):
    return a is not None and len(a) == len(b) and all(abs(x - y) < 1e-3 for x, y in zip(a, b))


def _check_normalisation(cfg, checkpoint, fix_norm, log):
    norm, what = checkpoint_normalisation(checkpoint)
    found = _preprocessors(cfg)
    if not found:
        return
    name, used = found[0]
    if norm is None:
        if checkpoint:
            log.change(f'{name}: mean / std not checked, the name of {checkpoint!r} does not '
                       'say what it expects (ImageNet-21k ViTs: mean = std = 127.5)')
        return
    mean, std = used.get('mean'), used.get('std')
    if _close(mean, norm['mean']) and _close(std, norm['std']):
        return
    if fix_norm:
        for where, pre in found:
            if where == name or 'mean' in pre or 'std' in pre:
                pre['mean'], pre['std'] = list(norm['mean']), list(norm['std'])
        log.change(f"{' and '.join(w for w, _ in found)}: mean={mean} std={std} -> "
                   f"mean={norm['mean']} std={norm['std']}, as {checkpoint!r} ({what}) expects")
        return
    log.warn(f"{name} normalises with mean={mean} std={std}, but the checkpoint {checkpoint!r} "
             f"({what}) expects mean={norm['mean']} std={norm['std']}; fix_norm=True "
             '(--fix-norm) sets the checkpoint\'s')


def dyt_config(cfg, dispatch='mlp', adapter_dim=64, target_rate=0.5, pretrained=None,
               num_experts=1, *, rate_loss_weight=2.0, fix_norm=False, keep_pre_logits=False,
               changes=None, **backbone_overrides):
    """The DyT version of a toolbox config.

    Args:
        cfg (Config | str | dict): an mmpretrain ``ImageClassifier``, mmseg
            ``EncoderDecoder`` or mmaction2 ``Recognizer3D`` config with a
            ViT backbone (mmpretrain / mmseg ``VisionTransformer``,
            mmaction2's VideoMAE ``VisionTransformer`` or ``TimeSformer``);
            not modified.
        dispatch (str | None): DyT variant ('mlp', 'attn', 'attn_mlp',
            'layer'); None for no token dispatch (no rate loss then).
        adapter_dim (int | None): adapter bottleneck.
        target_rate (float): the rate loss's target activation rate.
        pretrained (str | None): the ViT checkpoint; None keeps the config's
            (mmseg's segmentor-level ``pretrained``, a backbone ``pretrained``
            or ``Pretrained`` init_cfg).
        num_experts (int): adapter experts (> 1: MoE-adapter).
        rate_loss_weight (float): the rate loss weight (mmdyt's configs: 2).
        fix_norm (bool): set the data preprocessor's mean / std to the
            checkpoint's when they differ (else a warning).
        keep_pre_logits (bool): keep mmpretrain's
            ``VisionTransformerClsHead(hidden_dim=...)`` (else replaced by a
            ``LinearClsHead`` with a warning).
        changes (list | None): receives one line per change ("WARNING: "
            first for the ones issued as :class:`DyTConfigWarning`); None
            prints them through mmengine's logger.
        **backbone_overrides: further ``DyTVisionTransformer`` arguments
            (``adapter_scale``, ``arch``, ``rel_pos_bias``, ...), set last; a
            new ``arch`` width reaches the neck / heads too.

    Returns:
        Config: the converted config (``Config.dump`` writes it whole; the
        replaced backbone and heads hold no key of the old ones).

    Raises:
        ValueError: a model, backbone or head dyt_config cannot convert, or
            old backbone settings that would change what the network computes
            (each named).
    """
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    source = cfg.to_dict() if isinstance(cfg, Config) else _plain(dict(cfg))
    filename = cfg.filename if isinstance(cfg, Config) else None
    data = _plain(source)
    log = _Log()
    model = data.get('model')
    if not isinstance(model, dict) or model.get('type') not in TASK_MODELS:
        got = model.get('type') if isinstance(model, dict) else model
        if got in {v[1] for v in TASK_MODELS.values()}:
            raise ValueError(f'model.type is already {got}: the config has DyT')
        raise ValueError(f'dyt_config converts {sorted(TASK_MODELS)} models, got model.type='
                         f'{got!r}')
    toolbox, task_model = TASK_MODELS[model['type']]
    old = model.get('backbone') or {}
    reader_fn = READERS.get((toolbox, old.get('type')))
    if reader_fn is None:
        supported = sorted(t for tb, t in READERS if tb == toolbox)
        raise ValueError(f'model.backbone.type={old.get("type")!r}: dyt_config converts '
                         f'{toolbox} backbones {supported}')
    scope = data.get('default_scope')
    if scope is not None and scope != toolbox:
        raise ValueError(f'default_scope={scope!r} but model.type={model["type"]!r} is a '
                         f'{toolbox} model')
    video = toolbox == 'mmaction'
    reader = reader_fn(old)
    reader['old_type'] = old['type']
    backbone, size = _build_backbone(reader, video, dispatch, adapter_dim, num_experts,
                                     pretrained, dict(backbone_overrides), log)
    if '_scope_' in old:
        backbone['_scope_'] = old['_scope_']

    # model type and rate loss
    log.change(f"model.type: {model['type']} -> {task_model}")
    model['type'] = task_model
    if dispatch is None:
        model['rate_loss'] = None
        log.change('model.rate_loss: None (dispatch=None: no dispatcher to train)')
    else:
        model['rate_loss'] = dict(type='ActivationRateLoss', target_rate=target_rate,
                                  loss_weight=rate_loss_weight)
        log.change(f"model.rate_loss: ActivationRateLoss(target_rate={target_rate:g}, "
                   f"loss_weight={rate_loss_weight:g})")

    # backbone, with the old one's description
    model['backbone'] = backbone
    shown = {k: v for k, v in backbone.items() if k not in ('type', '_scope_')}
    what = reader.get('replaced') or old['type']
    log.change(f"model.backbone: {what} replaced (_delete_=True) by "
               f"{_call(backbone['type'], shown)}; size from {reader['size_source']}")
    for note in reader['dropped']:
        log.change(f'model.backbone: dropped {note}')

    # the checkpoint at the segmentor moves into the backbone
    if model.get('pretrained') is not None and toolbox == 'mmseg':
        seg_pretrained = model['pretrained']
        model['pretrained'] = None
        if pretrained is None and reader['checkpoint'] is None:
            backbone['pretrained'] = seg_pretrained
            log.change(f'model.pretrained={seg_pretrained!r} moved into '
                       'model.backbone.pretrained (model.pretrained=None: mmseg refuses both)')
        else:
            log.change(f'model.pretrained={seg_pretrained!r} -> None (the backbone loads '
                       f"{backbone.get('pretrained')!r}; mmseg refuses both)")
    checkpoint = backbone.get('pretrained') or (backbone.get('init_cfg') or {}).get('checkpoint')
    if not checkpoint and toolbox == 'mmpretrain' and (model.get('pretrained') or (
            model.get('init_cfg') or {}).get('type') == 'Pretrained'):
        checkpoint = model.get('pretrained') or model['init_cfg'].get('checkpoint')
        log.change(f'model-level checkpoint {checkpoint!r} kept (DyTImageClassifier loads it '
                   'through the same key mapping)')
    if not checkpoint:
        log.warn('no ViT checkpoint: the frozen backbone would stay at its random '
                 'initialisation; pass pretrained= (--pretrained), e.g. '
                 "'data/pretrained/vit-b16_in21k.npz'")

    # heads
    width, num_heads = size['embed_dims'], size['num_heads']
    if video:
        _video_head(model, width, num_heads, log)
        test_cfg = model.get('test_cfg') or {}
        if test_cfg.get('max_testing_views'):
            test_cfg.pop('max_testing_views')
            log.change('model.test_cfg.max_testing_views removed (DyTRecognizer3D needs every '
                       'view of a video in one forward for its FLOPs)')
        pre = model.get('data_preprocessor') or {}
        if pre and pre.get('format_shape') != 'NCTHW':
            log.change(f"model.data_preprocessor.format_shape: {pre.get('format_shape')!r} -> "
                       "'NCTHW'")
            pre['format_shape'] = 'NCTHW'
    else:
        if toolbox == 'mmpretrain':
            _classification_head(model, width, keep_pre_logits, log)
        _carry_width(model, width, log)

    _add_evaluator(data, log)
    _add_runtime(data, log)
    _check_normalisation(data, checkpoint, fix_norm, log)
    missing = [k for k in ('train_dataloader', 'train_cfg', 'optim_wrapper') if not data.get(k)]
    if missing:
        log.warn(f'the config has no {", ".join(missing)}: it can be tested but not trained '
                 'until they are added')

    if changes is not None:
        changes.extend(log.lines)
    else:
        from mmengine.logging import print_log
        for line in log.lines:
            print_log(line, logger='current')
    return Config(data, filename=filename)


def carry_backbone_width(cfg, cfg_options):
    """A ViT width changed by ``--cfg-options`` (``model.backbone.arch=...``)
    carried, in place, to what reads the backbone: the neck's and heads'
    ``in_channels`` (a video recognizer's ``cls_head`` too), by the rules
    :func:`dyt_config` uses. Returns the changes, one line each."""
    if not any(k.startswith('model.backbone.arch') for k in cfg_options or {}):
        return []
    model = cfg.get('model', {})
    try:
        width = _resolve_size(model.get('backbone', {}).get('arch'))['embed_dims']
    except (ValueError, TypeError):  # Swin, or a backbone without a ViT arch
        return []
    log = _Log()
    _carry_width(model, width, log)
    head = model.get('cls_head')
    if head and 'in_channels' in head and _set_width(head, 'in_channels', width):
        log.change(f'model.cls_head.in_channels: -> {width} (the backbone width)')
    return list(log.lines)
