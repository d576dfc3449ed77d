"""Reading a timm ``VisionTransformer`` for :func:`~mmdyt.api.get_dyt_model`
(timm is imported here only, when a timm model is given)."""
import copy
from collections import OrderedDict

import torch.nn as nn

from .build import BaseModel, UnsupportedModelError, activation_name, drop_path_rate, layer_norm_eps

#: timm ``global_pool`` -> DyT ``out_type``.
POOLS = {'token': 'cls_token', 'avg': 'avg_featmap', 'map': 'map'}
#: Hints for timm model classes that are not a ``VisionTransformer``.
CLASS_HINTS = {
    'Eva': 'rotary position embedding (rope), SwiGLU MLP',
    'Beit': 'relative position bias per block',
    'VisionTransformerRelPos': 'relative position bias',
    'VisionTransformerSAM': 'windowed attention with relative positions',
    'VisionTransformerDistilled': 'a distillation token',
    'VisionTransformerHybrid': 'a CNN stem',
}


def _is(module, cls):
    return type(module) is cls


def _p(dropout):
    """Rate of an ``nn.Dropout`` (0 for ``nn.Identity``)."""
    return getattr(dropout, 'p', 0.0)


def read_patch_embed(model, problems):
    """(img_size, patch_size, in_channels, conv has a bias) of timm's
    ``PatchEmbed``; a stem of another kind is a problem."""
    from timm.layers import PatchEmbed
    embed = model.patch_embed
    if not _is(embed, PatchEmbed):
        problems.append(f'a {type(embed).__name__} stem (a patch-embedding convolution is '
                        'the only stem)')
        return None
    conv = embed.proj
    patch = tuple(embed.patch_size)
    if not isinstance(conv, nn.Conv2d) or tuple(conv.kernel_size) != patch or \
            tuple(conv.stride) != patch or tuple(conv.padding) != (0, 0) or \
            tuple(conv.dilation) != (1, 1) or conv.groups != 1:
        problems.append('a patch embedding that is not a plain convolution with kernel = '
                        'stride = patch size')
    if patch[0] != patch[1]:
        problems.append(f'non-square patches {patch}')
    if not isinstance(embed.norm, nn.Identity):
        problems.append('a norm in the patch embedding (embed_norm_layer)')
    return tuple(embed.img_size), patch[0], conv.in_channels, conv.bias is not None


def read_blocks(model, problems):
    """(qkv_bias, feedforward_channels, layer_scale, act, eps of the block
    norms, drop_path_rate) of the blocks; what DyTBlock cannot do is a
    problem."""
    from timm.layers import Attention, LayerScale, Mlp
    from timm.models.vision_transformer import Block
    found = dict(qkv_bias=set(), ffn=set(), layer_scale=set(), act=set(), eps=set())
    rates = []
    for i, block in enumerate(model.blocks):
        if not _is(block, Block):
            problems.append(f'block type {type(block).__name__} (blocks.{i})')
            continue
        attn, mlp = block.attn, block.mlp
        if not _is(attn, Attention):
            problems.append(f'attention layer {type(attn).__name__} (blocks.{i}.attn)')
        else:
            if not (isinstance(attn.q_norm, nn.Identity) and isinstance(attn.k_norm, nn.Identity)):
                problems.append('qk_norm')
            if not isinstance(getattr(attn, 'norm', nn.Identity()), nn.Identity):
                problems.append('a norm inside the attention (scale_attn_norm)')
            if attn.proj.bias is None:
                problems.append('attention / MLP projections without bias (proj_bias=False)')
            if abs(attn.scale - attn.head_dim**-0.5) > 1e-9:
                problems.append(f'an attention scale {attn.scale} other than head_dim ** -0.5')
            if _p(attn.attn_drop) or _p(attn.proj_drop):
                problems.append('attention dropout (attn_drop_rate / proj_drop_rate)')
            found['qkv_bias'].add(attn.qkv.bias is not None)
        if not _is(mlp, Mlp):
            problems.append(f'MLP layer {type(mlp).__name__} (e.g. SwiGLU / GLU; DyT has '
                            'fc1 -> activation -> fc2)')
        else:
            if not isinstance(mlp.norm, nn.Identity):
                problems.append('a norm inside the MLP (scale_mlp_norm)')
            if not (isinstance(mlp.fc1, nn.Linear) and isinstance(mlp.fc2, nn.Linear)) or \
                    mlp.fc1.bias is None or mlp.fc2.bias is None:
                problems.append('MLP layers that are not linear layers with bias')
            if _p(mlp.drop1) or _p(mlp.drop2):
                problems.append('MLP dropout (proj_drop_rate)')
            found['ffn'].add(mlp.fc1.out_features)
            act = activation_name(mlp.act)
            if act is None:
                problems.append(f'MLP activation {type(mlp.act).__name__} (DyT: GELU, '
                                'tanh-GELU, QuickGELU)')
            found['act'].add(act)
        scales = (block.ls1, block.ls2)
        if all(_is(s, LayerScale) for s in scales):
            found['layer_scale'].add(True)
        elif all(isinstance(s, nn.Identity) for s in scales):
            found['layer_scale'].add(False)
        else:
            problems.append(f'LayerScale of another kind or on one branch only (blocks.{i})')
        for norm in (block.norm1, block.norm2):
            eps = layer_norm_eps(norm)
            if eps is None:
                problems.append(f'{type(norm).__name__} in the blocks (DyT: affine LayerNorm)')
            found['eps'].add(eps)
        rates.append(float(getattr(block.drop_path1, 'drop_prob', 0.0)))
    for key, values in found.items():
        if len(values) > 1:
            problems.append(f'blocks that differ in {key} ({sorted(values, key=str)})')
    one = {key: next(iter(values)) if values else None for key, values in found.items()}
    return one, drop_path_rate(rates, problems)


def read_attn_pool(model, embed_dims, ffn, act, problems):
    """Check timm's ``AttentionPoolLatent`` against DyT's ``AttentionPool``;
    returns its LayerNorm eps."""
    from timm.layers import AttentionPoolLatent, Mlp
    pool = model.attn_pool
    if not _is(pool, AttentionPoolLatent):
        problems.append(f'attention pooling {type(pool).__name__}')
        return None
    if model.num_prefix_tokens and not model.pool_include_prefix:
        problems.append('attention pooling that leaves out the class / register tokens (DyT '
                        'pools over every token)')
    checks = [
        (pool.latent_len == 1, 'more than one latent query'),
        (pool.pos_embed is None, 'a position embedding'),
        (isinstance(pool.q_norm, nn.Identity), 'qk_norm'),
        (isinstance(pool.q, nn.Linear) and pool.q.bias is not None and pool.kv.bias is not None,
         'q / kv projections without bias'),
        (pool.pool == 'token', f'pool_type={pool.pool!r}'),
        (isinstance(pool.proj, nn.Linear) and pool.proj.out_features == embed_dims,
         'an output width other than the embedding width'),
        (_is(pool.mlp, Mlp) and pool.mlp.fc1.out_features == ffn and
         activation_name(pool.mlp.act) == act and isinstance(pool.mlp.norm, nn.Identity),
         'an MLP unlike the blocks\''),
        (not _p(pool.proj_drop), 'dropout'),
    ]
    problems.extend(f'attention pooling with {what}' for ok, what in checks if not ok)
    eps = layer_norm_eps(pool.norm)
    if eps is None:
        problems.append('attention pooling without an affine LayerNorm')
    return eps


def read_timm_vit(model):
    """The :class:`~mmdyt.api.build.BaseModel` of a timm ``VisionTransformer``.

    Raises:
        UnsupportedModelError: naming every feature DyTVisionTransformer has
            no setting for.
    """
    from timm.models.vision_transformer import VisionTransformer
    name = type(model).__name__
    source = f'timm {name}'
    if not _is(model, VisionTransformer):
        hint = CLASS_HINTS.get(name) or ('rotary position embedding (rope)' if getattr(
            model, 'rope', None) is not None else 'an architecture other than VisionTransformer')
        raise UnsupportedModelError(source, [hint],
                                    "get_dyt_model reads timm's VisionTransformer class only")
    problems = []
    if model.dynamic_img_size:
        problems.append('dynamic_img_size=True (DyT resizes its position embedding to every '
                        'input itself; create the model without it)')
    embed = read_patch_embed(model, problems)
    if model.pos_embed is None:
        problems.append("no position embedding (pos_embed='none')")
    if model.num_reg_tokens and not model.no_embed_class:
        problems.append('register tokens with position embeddings (no_embed_class=False; '
                        'DyT registers have none)')
    if _p(model.pos_drop):
        problems.append('position-embedding dropout (pos_drop_rate)')
    if not isinstance(model.patch_drop, nn.Identity):
        problems.append('patch dropout (patch_drop_rate)')
    blocks, rate = read_blocks(model, problems)
    pre_norm = not isinstance(model.norm_pre, nn.Identity)
    final_norm = not isinstance(model.norm, nn.Identity)
    eps = {blocks['eps']}
    for norm, what in ((model.norm_pre, 'norm_pre'), (model.norm, 'the final norm')):
        if not isinstance(norm, nn.Identity):
            eps.add(layer_norm_eps(norm))
            if layer_norm_eps(norm) is None:
                problems.append(f'{type(norm).__name__} as {what}')
    pool = model.global_pool
    if pool not in POOLS:
        problems.append(f"global_pool={pool!r} (DyT: 'token', 'avg', 'map')")
    elif pool == 'avg' and model.pool_include_prefix:
        problems.append('average pooling over the class / register tokens too '
                        '(pool_include_prefix)')
    elif pool == 'map':
        eps.add(read_attn_pool(model, model.embed_dim, blocks['ffn'], blocks['act'], problems))
    eps.discard(None)
    if len(eps) > 1:
        problems.append(f'LayerNorms with different eps {sorted(eps)}')
    if embed is not None and embed[3] == pre_norm:
        problems.append('a patch-embedding bias together with pre_norm' if pre_norm else
                        'a patch embedding without bias and without pre_norm')
    if problems:
        raise UnsupportedModelError(source, list(dict.fromkeys(problems)))
    img_size, patch_size, in_channels, _ = embed
    settings = dict(
        arch=dict(embed_dims=model.embed_dim, num_layers=len(model.blocks),
                  num_heads=model.blocks[0].attn.num_heads,
                  feedforward_channels=blocks['ffn']),
        img_size=img_size, patch_size=patch_size, in_channels=in_channels,
        qkv_bias=blocks['qkv_bias'], class_token=model.has_class_token,
        num_registers=model.num_reg_tokens,
        layer_scale_init_value=1e-5 if blocks['layer_scale'] else 0.0,
        pre_norm=pre_norm, norm_eps=eps.pop(), act=blocks['act'], out_type=POOLS[pool],
        final_norm=final_norm, drop_path_rate=rate)
    state = {key: value for key, value in model.state_dict().items()
             if key.split('.')[0] not in ('head', 'fc_norm')}
    head = copy.deepcopy(nn.Sequential(OrderedDict(
        fc_norm=model.fc_norm, head_drop=model.head_drop, fc=model.head)))
    return BaseModel(source, settings, state, head, model, model, (in_channels, *img_size))
