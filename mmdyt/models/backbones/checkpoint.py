"""Loading pretrained ViT weights into :class:`DyTVisionTransformer`.

One key mapping, from the three formats users have, to mmdyt's (timm-style)
names:

=================================  ==================================
mmpretrain ``VisionTransformer``   mmdyt / timm
=================================  ==================================
``patch_embed.projection``         ``patch_embed.proj``
``layers.{i}.ln1`` / ``ln2``       ``blocks.{i}.norm1`` / ``norm2``
``layers.{i}.attn.qkv`` / ``proj`` ``blocks.{i}.attn.qkv`` / ``proj``
``layers.{i}.ffn.layers.0.0``      ``blocks.{i}.mlp.fc1``
``layers.{i}.ffn.layers.1``        ``blocks.{i}.mlp.fc2``
``ln1`` (final norm)               ``norm``
=================================  ==================================

timm ``vit_*_patch16_*`` state dicts already use mmdyt's names, as do the
self-supervised releases: MAE's ``model`` (its decoder keys are ignored) and
MoCo v3's ``module.base_encoder.`` (the momentum encoder and predictor are
ignored); their mmpretrain conversions use mmpretrain's names. The original
ImageNet-21k ``.npz`` files (big_vision / AugReg layout) are converted as
timm's ``_load_weights`` does. Prefixes ``backbone.``, ``module.`` and wrapper
keys ``state_dict`` / ``model`` are removed first.
"""
import json
import os
import pickle
import re
import struct
import zipfile

import numpy as np
import torch
from mmengine.logging import MMLogger

from ..layers import resize_pos_embed
from .hub import is_hub_spec, resolve_checkpoint

MMPRETRAIN_KEY_MAP = [
    (r'^layers\.(\d+)\.attn\.gamma1\.weight$', r'blocks.\1.ls1.gamma'),
    (r'^layers\.(\d+)\.ffn\.gamma2\.weight$', r'blocks.\1.ls2.gamma'),
    (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
    (r'^layers\.(\d+)\.ln1\.', r'blocks.\1.norm1.'),
    (r'^layers\.(\d+)\.ln2\.', r'blocks.\1.norm2.'),
    (r'^layers\.(\d+)\.attn\.', r'blocks.\1.attn.'),
    (r'^layers\.(\d+)\.ffn\.layers\.0\.0\.', r'blocks.\1.mlp.fc1.'),
    (r'^layers\.(\d+)\.ffn\.layers\.1\.', r'blocks.\1.mlp.fc2.'),
    (r'^ln1\.', 'norm.'),
    (r'^pre_norm\.', 'norm_pre.'),
]
STRIPPED_PREFIXES = ('module.', 'backbone.')
#: Keys of the original DINOv2 release -> mmdyt's (timm's); its
#: ``mask_token`` (masked image modelling) has no use in a backbone.
DINOV2_KEY_MAP = {'register_tokens': 'reg_token'}
#: The image tower of OpenAI's CLIP and of OpenCLIP state dicts (keys under
#: ``visual.``; the text tower is ignored) -> mmdyt's names, applied in order.
CLIP_KEY_MAP = [
    (r'^conv1\.', 'patch_embed.proj.'),
    (r'^ln_pre\.', 'norm_pre.'),
    (r'^ln_post\.', 'norm.'),
    (r'^transformer\.resblocks\.(\d+)\.ln_1\.', r'blocks.\1.norm1.'),
    (r'^transformer\.resblocks\.(\d+)\.ln_2\.', r'blocks.\1.norm2.'),
    (r'^transformer\.resblocks\.(\d+)\.attn\.in_proj_', r'blocks.\1.attn.qkv.'),
    (r'^transformer\.resblocks\.(\d+)\.attn\.out_proj\.', r'blocks.\1.attn.proj.'),
    (r'^transformer\.resblocks\.(\d+)\.mlp\.c_fc\.', r'blocks.\1.mlp.fc1.'),
    (r'^transformer\.resblocks\.(\d+)\.mlp\.c_proj\.', r'blocks.\1.mlp.fc2.'),
]
CLIP_VISUAL = 'visual.'
#: Keys of checkpoints written by earlier mmdyt releases -> today's: LoRA
#: (``lora_rank``) wrapped qkv as ``attn.qkv.base``.
LEGACY_KEY_MAP = [(re.compile(r'\.attn\.qkv\.base\.'), '.attn.qkv.')]


def upgrade_legacy_keys(state_dict):
    """Rename, in place, the keys of checkpoints written by earlier releases
    (:data:`LEGACY_KEY_MAP`); returns how many were renamed."""
    renamed = 0
    for key in list(state_dict):
        new_key = key
        for pattern, replacement in LEGACY_KEY_MAP:
            new_key = pattern.sub(replacement, new_key)
        if new_key != key:
            state_dict[new_key] = state_dict.pop(key)
            renamed += 1
    return renamed


def read_checkpoint(path):
    """Read a checkpoint file into a flat dict of arrays or tensors; no code
    in the file runs.

    The format is decided by the file's first bytes, not its name: a
    safetensors file (``safetensors.torch.load_file``, no pickle), a torch zip
    or legacy pickle checkpoint (``.pth`` / ``.pt`` / ``.bin``,
    ``torch.load(weights_only=True)``) or a numpy ``.npz`` (no pickle). A file
    named ``.safetensors`` must be a safetensors file.
    ``'hf-hub:<org>/<name>[@<revision>]'`` is first resolved to the cached or
    downloaded weight file (:func:`mmdyt.models.backbones.hub.resolve_checkpoint`).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a ``.safetensors`` name on another format, a truncated or
            corrupt file (the path and what the file looks like are named), or
            an ``hf-hub:`` repo that cannot be resolved.
    """
    if is_hub_spec(path):
        path = resolve_checkpoint(path)
    path = os.fspath(path)
    torch_file = 'a torch zip/pickle checkpoint'

    def sniff():
        """(format, what the file looks like) from its first bytes."""
        with open(path, 'rb') as file:
            head = file.read(9)
            size = os.fstat(file.fileno()).st_size
        if head[:4] in (b'PK\x03\x04', b'PK\x05\x06'):
            try:
                with zipfile.ZipFile(path) as archive:
                    names = archive.namelist()
            except zipfile.BadZipFile:
                return 'torch', 'a truncated or corrupt zip archive (.pth or .npz)'
            if any(name.endswith('constants.pkl') for name in names):
                return 'torchscript', 'a TorchScript archive (e.g. OpenAI\'s CLIP release)'
            if any(name.endswith('data.pkl') for name in names):
                return 'torch', torch_file
            if all(name.endswith('.npy') for name in names):
                return 'npz', 'a numpy .npz archive'
            return 'zip', f'a zip archive that is no checkpoint (members {names[:3]})'
        if head[:1] == b'\x80':  # pickle protocol >= 2: torch's legacy format
            return 'torch', torch_file
        if len(head) == 9 and head[8:9] == b'{':
            header_size = struct.unpack('<Q', head[:8])[0]
            if 8 + header_size > size:
                return 'safetensors', (f'a truncated safetensors file (a {header_size}-byte '
                                       f'header in a {size}-byte file)')
            return 'safetensors', 'a safetensors file'
        if not head:
            return 'empty', 'an empty file'
        return 'unknown', f'a file of no known checkpoint format (it starts with {head[:8]!r})'

    def read_safetensors():
        try:
            from safetensors import SafetensorError
            from safetensors.torch import load_file
        except ImportError as error:
            raise ImportError(f'checkpoint {path} is a safetensors file: reading it needs '
                              'the safetensors package (pip install safetensors)') from error
        try:
            return load_file(path, device='cpu')
        except (SafetensorError, json.JSONDecodeError, OSError) as error:
            raise ValueError(f'cannot read checkpoint {path}: the file is truncated, corrupt or '
                             f'not a checkpoint (it looks like {looks}; '
                             f'{type(error).__name__}: {error})') from error

    try:
        kind, looks = sniff()
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ValueError(f'cannot read checkpoint {path}: {type(error).__name__}: '
                         f'{error}') from error
    if path.endswith('.safetensors') and kind != 'safetensors':
        hint = {'torch': '; rename it .pth', 'npz': '; rename it .npz'}.get(kind, '')
        raise ValueError(f'checkpoint {path} is not a safetensors file: it is {looks}{hint}')
    if kind == 'safetensors':
        return read_safetensors()
    if kind == 'torchscript':
        raise ValueError(
            f'checkpoint {path} is {looks}: mmdyt reads weights only and does not load '
            'TorchScript. Convert it once, on a file you trust: python -c "import torch; '
            f"torch.save(torch.jit.load('{path}', map_location='cpu').state_dict(), "
            "'clip_state_dict.pth')\" and load the .pth (its visual. keys map onto the ViT)")
    try:
        if kind == 'npz':
            with np.load(path) as data:
                return {key: data[key] for key in data.files}
        return torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as error:
        raise ValueError(f'checkpoint {path} holds objects other than tensors and plain '
                         'containers, which mmdyt does not unpickle (torch.load with '
                         f'weights_only=True refused: {error})') from error
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f'cannot read checkpoint {path}: the file is truncated, corrupt '
                         f'or not a checkpoint (it looks like {looks}; '
                         f'{type(error).__name__}: {error})') from error


def convert_npz(weights, num_layers):
    """Original ViT ``.npz`` (arrays named like ``Transformer/encoderblock_0/
    LayerNorm_0/scale``) -> mmdyt state dict."""
    prefix = 'opt/target/' if 'opt/target/embedding/kernel' in weights else ''

    def get(name):
        return torch.from_numpy(np.asarray(weights[prefix + name]))

    kernel = get('embedding/kernel')
    embed_dims = kernel.shape[-1]
    state = {
        'patch_embed.proj.weight': kernel.permute(3, 2, 0, 1),
        'patch_embed.proj.bias': get('embedding/bias'),
        'cls_token': get('cls'),
        'pos_embed': get('Transformer/posembed_input/pos_embedding'),
        'norm.weight': get('Transformer/encoder_norm/scale'),
        'norm.bias': get('Transformer/encoder_norm/bias'),
    }
    for i in range(num_layers):
        block = f'Transformer/encoderblock_{i}/'
        mha = block + 'MultiHeadDotProductAttention_1/'
        out = f'blocks.{i}.'
        state[out + 'norm1.weight'] = get(block + 'LayerNorm_0/scale')
        state[out + 'norm1.bias'] = get(block + 'LayerNorm_0/bias')
        state[out + 'norm2.weight'] = get(block + 'LayerNorm_2/scale')
        state[out + 'norm2.bias'] = get(block + 'LayerNorm_2/bias')
        state[out + 'attn.qkv.weight'] = torch.cat([
            get(f'{mha}{n}/kernel').reshape(embed_dims, -1).T
            for n in ('query', 'key', 'value')
        ])
        state[out + 'attn.qkv.bias'] = torch.cat(
            [get(f'{mha}{n}/bias').reshape(-1) for n in ('query', 'key', 'value')])
        state[out + 'attn.proj.weight'] = get(mha + 'out/kernel').reshape(-1, embed_dims).T
        state[out + 'attn.proj.bias'] = get(mha + 'out/bias')
        for j, name in enumerate(('fc1', 'fc2')):
            state[out + f'mlp.{name}.weight'] = get(f'{block}MlpBlock_3/Dense_{j}/kernel').T
            state[out + f'mlp.{name}.bias'] = get(f'{block}MlpBlock_3/Dense_{j}/bias')
    return state


#: MoCo v3's release keeps the ViT under this name, beside its momentum
#: encoder and predictor (which are not loaded).
MOCO_V3_ENCODER = 'base_encoder.'


def convert_state_dict(checkpoint, num_layers):
    """Any supported checkpoint (already read) -> mmdyt-named state dict:
    original ``.npz``, timm, mmpretrain (supervised, MAE, MoCo v3 converted),
    MAE's release (``model``, decoder keys ignored) and MoCo v3's release
    (``state_dict`` with ``module.base_encoder.``)."""
    if any(key.endswith('embedding/kernel') for key in checkpoint):
        return convert_npz(checkpoint, num_layers)
    for wrapper in ('state_dict', 'model'):
        if isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
    if any(key.startswith(CLIP_VISUAL) for key in checkpoint):
        return convert_clip(checkpoint)
    encoder = {key.split(MOCO_V3_ENCODER, 1)[1]: value for key, value in checkpoint.items()
               if key.startswith(MOCO_V3_ENCODER) or key.startswith('module.' + MOCO_V3_ENCODER)}
    checkpoint = encoder or checkpoint
    state = {}
    for key, value in checkpoint.items():
        for prefix in STRIPPED_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        for pattern, replacement in MMPRETRAIN_KEY_MAP:
            key = re.sub(pattern, replacement, key)
        state[DINOV2_KEY_MAP.get(key, key)] = torch.as_tensor(value)
    return fuse_eva_attention(state)


def fuse_eva_attention(state):
    """EVA-02's attention and MLP weights (timm's ``Eva`` names) in place ->
    mmdyt's: separate ``q_proj`` / ``k_proj`` / ``v_proj`` (k without bias)
    or a bias-less ``qkv`` with ``q_bias`` / ``v_bias`` -> one ``qkv`` with
    the k bias 0; a packed ``GluMlp`` ``fc1`` (gate first) -> ``fc1_g`` /
    ``fc1_x``; the original release's ``w1`` / ``w2`` / ``ffn_ln`` / ``w3``
    -> ``fc1_g`` / ``fc1_x`` / ``norm`` / ``fc2``."""
    renames = {'.mlp.w1.': '.mlp.fc1_g.', '.mlp.w2.': '.mlp.fc1_x.', '.mlp.ffn_ln.': '.mlp.norm.',
               '.mlp.w3.': '.mlp.fc2.'}
    for key in list(state):
        for old, new in renames.items():
            if old in key:
                state[key.replace(old, new)] = state.pop(key)
    blocks = {key.split('.attn.')[0] for key in state
              if re.match(r'^blocks\.\d+\.attn\.(q_proj|q_bias)', key)}
    for block in blocks:
        attn = block + '.attn.'
        if attn + 'q_proj.weight' in state:
            weight = torch.cat([state.pop(attn + f'{name}_proj.weight') for name in 'qkv'])
            q_bias, v_bias = state.pop(attn + 'q_proj.bias'), state.pop(attn + 'v_proj.bias')
            state.pop(attn + 'k_proj.bias', None)
        else:
            weight = state.pop(attn + 'qkv.weight')
            q_bias, v_bias = state.pop(attn + 'q_bias'), state.pop(attn + 'v_bias')
        state[attn + 'qkv.weight'] = weight
        state[attn + 'qkv.bias'] = torch.cat([q_bias, torch.zeros_like(q_bias), v_bias])
    for key in [k for k in state if re.match(r'^blocks\.\d+\.mlp\.fc1\.(weight|bias)$', k)]:
        fc2 = re.sub(r'fc1\.(weight|bias)$', 'fc2.weight', key)
        if fc2 in state and state[key].shape[0] == 2 * state[fc2].shape[1]:
            gate, value = state.pop(key).chunk(2)
            state[key.replace('.fc1.', '.fc1_g.')] = gate
            state[key.replace('.fc1.', '.fc1_x.')] = value
    return state


def convert_clip(checkpoint):
    """OpenAI CLIP / OpenCLIP state dict (image tower under ``visual.``) ->
    mmdyt state dict: ``class_embedding`` (C,) and ``positional_embedding``
    (N, C) get their batch dimensions, ``proj`` (C, D) becomes the
    projection's (D, C) weight."""
    state = {}
    for key, value in checkpoint.items():
        if not key.startswith(CLIP_VISUAL):
            continue
        key, value = key[len(CLIP_VISUAL):], torch.as_tensor(value)
        if key == 'class_embedding':
            state['cls_token'] = value.reshape(1, 1, -1)
        elif key == 'positional_embedding':
            state['pos_embed'] = value[None]
        elif key == 'proj':
            state['proj.weight'] = value.t()
        else:
            for pattern, replacement in CLIP_KEY_MAP:
                key = re.sub(pattern, replacement, key)
            state[key] = value
    return state


def _is_square(count):
    return count > 0 and int(round(count**0.5))**2 == count


def _lacks_class_row(rows, own_rows):
    """Whether a position embedding of ``rows`` rows, for a model with a class
    token and ``own_rows`` rows, has no class-token row: one row short of the
    model's grid, or of another square grid (a release's) without the row."""
    if rows == own_rows - 1:
        return True
    return rows != own_rows and _is_square(rows) and not _is_square(rows - 1)


def _grid(num_patches):
    side = int(round(num_patches**0.5))
    if side * side != num_patches:
        raise ValueError(f'pos_embed with {num_patches} patch positions is not a square grid')
    return side, side


def pop_pretrained_init(init_cfg):
    """Split mmengine's ``dict(type='Pretrained', checkpoint=..., prefix=...)``
    out of an ``init_cfg`` (a dict, a list of dicts or None).

    Returns:
        tuple: (the other init_cfg entries or None, the Pretrained entry or
        None).
    """
    entries = [] if init_cfg is None else list(init_cfg) if isinstance(
        init_cfg, (list, tuple)) else [init_cfg]
    pretrained = [entry for entry in entries if entry.get('type') == 'Pretrained']
    if len(pretrained) > 1:
        raise ValueError(f'init_cfg has {len(pretrained)} Pretrained entries, expected one')
    rest = [entry for entry in entries if entry.get('type') != 'Pretrained']
    return (rest or None), (pretrained[0] if pretrained else None)


def _with_prefix(checkpoint, prefix, source):
    """The keys of ``checkpoint`` (unwrapped) that start with ``prefix``,
    with the prefix removed (mmengine's ``Pretrained`` ``prefix``)."""
    for wrapper in ('state_dict', 'model'):
        if isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
    selected = {k[len(prefix):]: v for k, v in checkpoint.items() if k.startswith(prefix)}
    if not selected:
        raise ValueError(f'checkpoint {source} has no keys with the prefix {prefix!r}')
    return selected


#: First name components of ViT weights (mmdyt / timm and mmpretrain names):
#: a checkpoint key starting with one that the backbone lacks is a ViT weight
#: that would be lost. Output modules (a classifier ``head``, CLIP's ``proj``
#: without ``proj_dims``, SigLIP's ``attn_pool`` under another ``out_type``)
#: are the user's choice to leave out and are only logged.
VIT_KEY_ROOTS = ('patch_embed', 'cls_token', 'pos_embed', 'blocks', 'norm', 'prompts',
                 'layers', 'ln1', 'ln2', 'pre_norm', 'reg_token', 'norm_pre')


def load_vit_checkpoint(model, checkpoint, prefix=None):
    """Load pretrained ViT weights into ``model``.

    Args:
        model (DyTVisionTransformer): the backbone.
        checkpoint (str | dict): a file path or an already read checkpoint.
        prefix (str | None): take only the keys starting with it (e.g.
            ``'backbone.'`` of a whole-classifier checkpoint); None takes
            every key, ``backbone.`` / ``module.`` removed.

    Raises:
        ValueError: a tensor's shape does not fit (the key and both shapes are
            named), a ViT weight is missing or left unmatched, or the file
            cannot be read.
    """
    source = checkpoint if isinstance(checkpoint, str) else 'the given state dict'
    if isinstance(checkpoint, str):
        checkpoint = read_checkpoint(checkpoint)
    if prefix:
        checkpoint = _with_prefix(checkpoint, prefix, source)
    state = convert_state_dict(checkpoint, model.num_layers)
    own = model.state_dict()
    if 'proj.weight' in own and 'proj.weight' not in state and 'head.weight' in state:
        # timm's CLIP towers keep the projection as a bias-free (zero) head
        state['proj.weight'] = state.pop('head.weight')
        state.pop('head.bias', None)
    if 'fc_norm.weight' in own and 'fc_norm.weight' not in state and not model.final_norm:
        # EVA-02's MIM release keeps its pooled norm as the final ``norm``
        for name in ('weight', 'bias'):
            if f'norm.{name}' in state:
                state[f'fc_norm.{name}'] = state.pop(f'norm.{name}')
    extra = int(model.class_token)
    if 'pos_embed' in state and extra and _lacks_class_row(state['pos_embed'].shape[1],
                                                           own['pos_embed'].shape[1]):
        # timm's no_embed_class layout (DINOv2 with registers): the class
        # token has no position embedding, i.e. a zero row
        state['pos_embed'] = torch.cat([state['pos_embed'].new_zeros(
            1, 1, state['pos_embed'].shape[-1]), state['pos_embed']], 1)
    if 'pos_embed' in state and state['pos_embed'].shape != own['pos_embed'].shape:
        pos_embed = state['pos_embed']
        if pos_embed.shape[-1] == own['pos_embed'].shape[-1]:
            state['pos_embed'] = resize_pos_embed(
                pos_embed, _grid(pos_embed.shape[1] - extra), model.patch_resolution, extra)
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            raise ValueError(f'checkpoint {source} does not fit the model: {key} has shape '
                             f'{tuple(value.shape)} in the checkpoint and '
                             f'{tuple(own[key].shape)} in the model (another arch or patch size?)')
    missing = [k for k in own if k not in state and not model.is_tuning_parameter(k)]
    if missing:
        raise ValueError(f'checkpoint {source} lacks {len(missing)} ViT weights, e.g. '
                         f'{missing[:5]} (another depth or not a ViT checkpoint?)')
    unexpected = sorted(k for k in state if k not in own)
    unused = () if model.final_norm else ('norm', )
    unmatched = [k for k in unexpected
                 if k.split('.')[0] in VIT_KEY_ROOTS and k.split('.')[0] not in unused]
    if unmatched:
        raise ValueError(f'checkpoint {source} has {len(unmatched)} ViT weights this backbone '
                         f'has no place for, e.g. {unmatched[:5]} (another ViT variant, e.g. '
                         'layer scale, or another dispatch / adapter setting?)')
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    logger = MMLogger.get_current_instance()
    logger.info(f'Loaded ViT weights from {source}; ignored {len(unexpected)} keys '
                f'not in the backbone: {unexpected[:8]}')
