"""Loading pretrained Swin weights into :class:`DyTSwinTransformer`.

One key mapping, from the layouts users have, to mmdyt's names (mmpretrain's
where a module is the same: mmcv's patch embedding and merging):

==========================================  =======================================
mmpretrain ``SwinTransformer``              mmdyt
==========================================  =======================================
``stages.{i}.blocks.{j}.attn.w_msa.*``      ``stages.{i}.blocks.{j}.attn.*``
``stages.{i}.blocks.{j}.ffn.layers.0.0``    ``stages.{i}.blocks.{j}.mlp.fc1``
``stages.{i}.blocks.{j}.ffn.layers.1``      ``stages.{i}.blocks.{j}.mlp.fc2``
``norm.`` (before version 2)                ``norm{last stage}.``
==========================================  =======================================

==========================================  =======================================
timm ``swin_*`` / original release          mmdyt
==========================================  =======================================
``patch_embed.proj``                        ``patch_embed.projection``
``layers.{i}.blocks.{j}.*``                 ``stages.{i}.blocks.{j}.*``
``layers.{i}.downsample`` (timm >= 0.9:     ``stages.{i}.downsample`` (``i - 1``),
at the start of stage i)                    reduction / norm channels reordered
``norm``                                    ``norm{last stage}``
==========================================  =======================================

The original patch merging concatenates the four 2x2 neighbours position by
position; mmcv's ``nn.Unfold`` channel by channel, so the merging weights of
timm-layout checkpoints are permuted (as mmpretrain's ``swin2mmpretrain``
does). Relative position tables of another window size are resized bicubically.
Index buffers, shift masks and classifier heads are dropped.
"""
import re

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger

from .checkpoint import STRIPPED_PREFIXES, _with_prefix, read_checkpoint

MMPRETRAIN_SWIN_KEY_MAP = [
    (r'\.attn\.w_msa\.', '.attn.'),
    (r'\.ffn\.layers\.0\.0\.', '.mlp.fc1.'),
    (r'\.ffn\.layers\.1\.', '.mlp.fc2.'),
]
TIMM_SWIN_KEY_MAP = [
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^layers\.(\d+)\.blocks\.', r'stages.\1.blocks.'),
]
DROPPED_KEYS = re.compile(r'relative_position_index|attn_mask|^head\.|^neck\.')
#: Keys only a ViT checkpoint has.
VIT_KEYS = re.compile(r'^(cls_token|pos_embed|blocks\.\d+\.|layers\.\d+\.ln1\.)'
                      r'|embedding/kernel')
#: Original (timm) order of the 2x2 neighbours -> mmcv's unfold order.
UNFOLD_ORDER = [0, 2, 1, 3]


def unfold_order(weight):
    """Merging weights over 4C inputs, (..., 4C) with the neighbours in the
    original order -> mmcv's channel-major unfold order."""
    leading, channels = weight.shape[:-1], weight.shape[-1] // 4
    return weight.reshape(*leading, 4, channels)[..., UNFOLD_ORDER, :].transpose(
        -1, -2).reshape(*leading, 4 * channels)


def _unwrap(checkpoint):
    for wrapper in ('state_dict', 'model'):
        if isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
    state = {}
    for key, value in checkpoint.items():
        for prefix in STRIPPED_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        state[key] = value
    return state


def convert_swin_state_dict(checkpoint, num_stages):
    """A read Swin checkpoint (mmpretrain or timm / original layout) ->
    mmdyt-named state dict.

    Raises:
        ValueError: the checkpoint is a ViT's, or holds no Swin weights.
    """
    state = _unwrap(checkpoint)
    vit_keys = [key for key in state if VIT_KEYS.search(key)]
    if vit_keys:
        raise ValueError(f'this is a ViT checkpoint ({vit_keys[:3]} ...), not a Swin one: '
                         'DyTSwinTransformer needs mmpretrain, timm or original Swin weights')
    timm_layout = any(key.startswith('layers.') for key in state)
    if not timm_layout and not any(key.startswith('stages.') for key in state):
        raise ValueError('no Swin weights in the checkpoint (neither mmpretrain stages.* nor '
                         f'timm layers.* keys; first keys {list(state)[:5]})')
    # the original / old timm layout merges at the end of stage i, timm >= 0.9
    # at the start of stage i + 1
    merge_shift = 1 if timm_layout and 'layers.0.downsample.reduction.weight' not in state \
        else 0
    converted = {}
    for key, value in state.items():
        if DROPPED_KEYS.search(key):
            continue
        value = torch.as_tensor(value)
        maps = TIMM_SWIN_KEY_MAP if timm_layout else MMPRETRAIN_SWIN_KEY_MAP
        for pattern, replacement in maps:
            key = re.sub(pattern, replacement, key)
        if key.startswith('norm.'):
            key = f'norm{num_stages - 1}.' + key[len('norm.'):]
        match = re.match(r'^layers\.(\d+)\.downsample\.(.*)$', key)
        if match:
            key = f'stages.{int(match.group(1)) - merge_shift}.downsample.{match.group(2)}'
            value = unfold_order(value)
        converted[key] = value
    return converted


def resize_relative_position_table(table, window_size):
    """((2w' - 1) ** 2, heads) table -> ((2w - 1) ** 2, heads), bicubic."""
    source = int(round(table.shape[0]**0.5))
    side = 2 * window_size - 1
    grid = table.T.reshape(1, table.shape[1], source, source).float()
    resized = F.interpolate(grid, size=(side, side), mode='bicubic', align_corners=False)
    return resized.reshape(table.shape[1], side * side).T.to(table.dtype)


def check_shapes(own, state, source):
    """Raise when a tensor of ``state`` (key -> tensor) has another shape
    than the model's (``own``), naming the key and both shapes."""
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            raise ValueError(f'checkpoint {source} does not fit the model: {key} has shape '
                             f'{tuple(value.shape)} in the checkpoint and '
                             f'{tuple(own[key].shape)} in the model (another arch, window or '
                             'patch size?)')


def load_swin_checkpoint(model, checkpoint, prefix=None):
    """Load pretrained Swin weights into ``model``.

    Args:
        model (DyTSwinTransformer): the backbone.
        checkpoint (str | dict): a file path or an already read checkpoint.
        prefix (str | None): take only the keys starting with it (mmengine's
            ``Pretrained`` ``prefix``); None takes every key, ``backbone.`` /
            ``module.`` removed.

    Raises:
        ValueError: a ViT checkpoint, a tensor whose shape does not fit (the
            key and both shapes named), Swin weights missing, or block /
            embedding weights the backbone has no place for.
    """
    source = checkpoint if isinstance(checkpoint, str) else 'the given state dict'
    if isinstance(checkpoint, str):
        checkpoint = read_checkpoint(checkpoint)
    if prefix:
        checkpoint = _with_prefix(checkpoint, prefix, source)
    state = convert_swin_state_dict(checkpoint, len(model.stages))
    own = model.state_dict()
    logger = MMLogger.get_current_instance()
    for key, value in state.items():
        if key.endswith('relative_position_bias_table') and key in own \
                and value.shape != own[key].shape and value.shape[1] == own[key].shape[1]:
            state[key] = resize_relative_position_table(value, model.window_size)
            logger.info(f'Resized {key} from {tuple(value.shape)} to {tuple(own[key].shape)}')
    check_shapes(own, state, source)
    out_norms = {f'norm{i}' for i in model.out_indices}
    missing = [k for k in own if k not in state and not model.is_tuning_parameter(k)
               and k.split('.')[0] not in out_norms]
    if missing:
        raise ValueError(f'checkpoint {source} lacks {len(missing)} Swin weights, e.g. '
                         f'{missing[:5]} (another depth or not a Swin checkpoint?)')
    fresh = sorted({k.split('.')[0] for k in own if k not in state} & out_norms)
    unexpected = sorted(k for k in state if k not in own)
    unmatched = [k for k in unexpected if k.split('.')[0] in ('stages', 'patch_embed')]
    if unmatched:
        raise ValueError(f'checkpoint {source} has {len(unmatched)} Swin weights this backbone '
                         f'has no place for, e.g. {unmatched[:5]} (another Swin variant, or '
                         'another dispatch / adapter setting?)')
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    logger.info(f'Loaded Swin weights from {source}; output norms not in it (left at their '
                f'initialisation): {fresh}; ignored {len(unexpected)} keys not in the '
                f'backbone: {unexpected[:8]}')
