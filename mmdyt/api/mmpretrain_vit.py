"""Reading an mmpretrain ``VisionTransformer`` (bare, or the backbone of an
``ImageClassifier`` without a neck) for :func:`~mmdyt.api.get_dyt_model`
(mmpretrain is imported here only, when an mmpretrain model is given)."""
import copy

import torch.nn as nn

from .build import BaseModel, UnsupportedModelError, activation_name, drop_path_rate, layer_norm_eps


class MMPretrainHead(nn.Module):
    """An mmpretrain classification head on DyT's pooled feature:
    ``head((norm(feature),))``; ``norm`` is the backbone's ``ln2`` of
    ``out_type='avg_featmap'`` (after the average), else ``nn.Identity``;
    ``head`` None returns the feature (a bare backbone)."""

    def __init__(self, norm, head=None):
        super().__init__()
        self.norm = norm
        self.cls_head = head

    def forward(self, x):
        x = self.norm(x)
        return x if self.cls_head is None else self.cls_head((x, ))


def _p(dropout):
    return getattr(dropout, 'p', 0.0)


def read_layers(backbone, problems):
    """(qkv_bias, feedforward_channels, layer_scale, act, eps, rate) of the
    encoder layers; what DyTBlock cannot do is a problem."""
    from mmcv.cnn.bricks.transformer import FFN
    from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
    from mmpretrain.models.utils import MultiheadAttention
    found = dict(qkv_bias=set(), ffn=set(), layer_scale=set(), act=set(), eps=set())
    rates = []
    for i, layer in enumerate(backbone.layers):
        if type(layer) is not TransformerEncoderLayer:
            problems.append(f'layer type {type(layer).__name__} (layers.{i})')
            continue
        attn, ffn = layer.attn, layer.ffn
        if type(attn) is not MultiheadAttention:
            problems.append(f'attention {type(attn).__name__} (layers.{i}.attn)')
        else:
            if attn.v_shortcut or attn.input_dims != attn.embed_dims:
                problems.append('attention with v_shortcut or another input width')
            if attn.proj.bias is None:
                problems.append('an attention projection without bias')
            if attn.attn_drop or _p(attn.proj_drop):
                problems.append('attention dropout (attn_drop_rate / drop_rate)')
            found['qkv_bias'].add(attn.qkv.bias is not None)
            rates.append(float(getattr(attn.out_drop, 'drop_prob', 0.0)))
        if type(ffn) is not FFN or ffn.num_fcs != 2 or not ffn.add_identity:
            problems.append(f'FFN {type(ffn).__name__} (e.g. ffn_type=\'swiglu_fused\'; DyT '
                            'has fc1 -> activation -> fc2)')
        else:
            fc1, act, drop = ffn.layers[0]
            if fc1.bias is None or ffn.layers[1].bias is None:
                problems.append('FFN layers without bias')
            if _p(drop) or _p(ffn.layers[2]):
                problems.append('FFN dropout (drop_rate)')
            found['ffn'].add(fc1.out_features)
            name = activation_name(act)
            if name is None:
                problems.append(f'FFN activation {type(act).__name__} (DyT: GELU, tanh-GELU, '
                                'QuickGELU)')
            found['act'].add(name)
            scales = (attn.gamma1, ffn.gamma2)
            if all(isinstance(s, nn.Identity) for s in scales):
                found['layer_scale'].add(False)
            elif not any(isinstance(s, nn.Identity) for s in scales):
                found['layer_scale'].add(True)
            else:
                problems.append(f'LayerScale on one branch only (layers.{i})')
        for norm in (layer.ln1, layer.ln2):
            eps = layer_norm_eps(norm)
            if eps is None:
                problems.append(f'{type(norm).__name__} in the layers (DyT: affine LayerNorm)')
            found['eps'].add(eps)
    for key, values in found.items():
        if len(values) > 1:
            problems.append(f'layers that differ in {key} ({sorted(values, key=str)})')
    one = {key: next(iter(values)) if values else None for key, values in found.items()}
    return one, drop_path_rate(rates, problems)


def read_mmpretrain_vit(model):
    """The :class:`~mmdyt.api.build.BaseModel` of an mmpretrain
    ``VisionTransformer`` or of an ``ImageClassifier`` with one (no neck; its
    head is kept, called on the pooled feature).

    Raises:
        UnsupportedModelError: naming every feature DyTVisionTransformer has
            no setting for.
    """
    from mmpretrain.models import ImageClassifier, VisionTransformer
    name = type(model).__name__
    head = None
    if type(model) is ImageClassifier:
        backbone, head = model.backbone, getattr(model, 'head', None)
        source = f'mmpretrain ImageClassifier with {type(backbone).__name__}'
        problems = [] if getattr(model, 'neck', None) is None else [
            f'a neck ({type(model.neck).__name__}); get_dyt_model keeps the head only']
    elif type(model) is VisionTransformer:
        backbone, source, problems = model, 'mmpretrain VisionTransformer', []
    else:
        raise UnsupportedModelError(f'mmpretrain {name}', ['another model class'],
                                    "get_dyt_model reads mmpretrain's VisionTransformer and "
                                    'an ImageClassifier with one')
    if type(backbone) is not VisionTransformer:
        raise UnsupportedModelError(source, ['another backbone class (e.g. a distillation '
                                             'token, relative positions)'],
                                    "get_dyt_model reads mmpretrain's VisionTransformer")
    num_layers = backbone.num_layers
    if backbone.out_type not in ('cls_token', 'avg_featmap'):
        problems.append(f"out_type={backbone.out_type!r} (a classifier reads 'cls_token' or "
                        "'avg_featmap')")
    if list(backbone.out_indices) != [num_layers - 1]:
        problems.append(f'out_indices={list(backbone.out_indices)} (the last layer only)')
    embed = backbone.patch_embed
    conv = embed.projection
    patch = tuple(conv.kernel_size)
    if not isinstance(conv, nn.Conv2d) or tuple(conv.stride) != patch or \
            patch[0] != patch[1] or tuple(conv.padding) != (0, 0) or \
            tuple(conv.dilation) != (1, 1) or conv.groups != 1:
        problems.append('a patch embedding that is not a plain convolution with kernel = '
                        'stride = a square patch')
    if embed.norm is not None:
        problems.append('a norm in the patch embedding (patch_cfg norm_cfg)')
    if backbone.interpolate_mode != 'bicubic':
        problems.append(f"interpolate_mode={backbone.interpolate_mode!r} (DyT: 'bicubic')")
    if _p(backbone.drop_after_pos):
        problems.append('dropout after the position embedding (drop_rate)')
    layers, rate = read_layers(backbone, problems)
    pre_norm = not isinstance(backbone.pre_norm, nn.Identity)
    eps = {layers['eps']}
    for norm in [backbone.pre_norm] * pre_norm + [backbone.ln1] * bool(backbone.final_norm):
        eps.add(layer_norm_eps(norm))
    eps.discard(None)
    if len(eps) > 1:
        problems.append(f'LayerNorms with different eps {sorted(eps)}')
    if (conv.bias is not None) == pre_norm:
        problems.append('a patch-embedding bias together with pre_norm' if pre_norm else
                        'a patch embedding without bias and without pre_norm')
    if problems:
        raise UnsupportedModelError(source, list(dict.fromkeys(problems)))
    avg = backbone.out_type == 'avg_featmap'
    settings = dict(
        arch=dict(embed_dims=backbone.embed_dims, num_layers=num_layers,
                  num_heads=backbone.layers[0].attn.num_heads,
                  feedforward_channels=layers['ffn']),
        img_size=tuple(backbone.img_size), patch_size=patch[0], in_channels=conv.in_channels,
        qkv_bias=layers['qkv_bias'], class_token=backbone.with_cls_token,
        layer_scale_init_value=1e-5 if layers['layer_scale'] else 0.0, pre_norm=pre_norm,
        norm_eps=eps.pop(), act=layers['act'], out_type=backbone.out_type,
        final_norm=bool(backbone.final_norm), drop_path_rate=rate)
    state = {key: value for key, value in backbone.state_dict().items()
             if not key.startswith('ln2.')}
    head = copy.deepcopy(MMPretrainHead(backbone.ln2 if avg else nn.Identity(), head))

    def logits(x):
        if type(model) is VisionTransformer:
            return model(x)[-1]
        out = model(x, mode='tensor')
        return out if head.cls_head is not None else out[-1]
    return BaseModel(source, settings, state, head, model, logits,
                     (conv.in_channels, *backbone.img_size))
