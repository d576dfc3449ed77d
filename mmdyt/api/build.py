""":func:`get_dyt_model`: a timm or mmpretrain ViT -> :class:`DyTModel`.

The reader of each library (:mod:`.timm_vit`, :mod:`.mmpretrain_vit`) turns
the given model into a :class:`BaseModel`: the DyTVisionTransformer settings
of its architecture, its backbone weights, a copy of its classifier head and
a function computing its logits. Every feature the DyT backbone has no
setting for is collected and refused at once, naming each
(:class:`UnsupportedModelError`). After loading, the DyT model is checked
against the given model on a random batch (dispatch off, adapters and PETL
modules at their zero init), so a difference nothing refused is caught too.
"""
import contextlib
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.backbones import DyTVisionTransformer, load_vit_checkpoint
from ..models.layers import all_tokens_active
from .model import DyTModel


class UnsupportedModelError(ValueError):
    """The given model has features DyTVisionTransformer has no setting
    for; ``features`` names each."""

    def __init__(self, source, features, note=''):
        self.source = source
        self.features = list(features)
        super().__init__(
            f'get_dyt_model cannot build DyTVisionTransformer from {source}: it has '
            + '; '.join(self.features) + ', which DyTVisionTransformer has no setting for '
            '(refused rather than dropped)' + (f'; {note}' if note else ''))


@dataclass
class BaseModel:
    """What a reader takes from the given model.

    Attributes:
        source (str): the model, for messages (e.g. 'timm VisionTransformer').
        settings (dict): DyTVisionTransformer keyword arguments of its
            architecture.
        state_dict (dict): its backbone weights, in a layout
            :func:`load_vit_checkpoint` reads.
        head (nn.Module): a copy of its head, pooled feature -> logits.
        model (nn.Module): the given model.
        logits (callable): images -> the given model's logits (the check).
        input_size (tuple): (C, H, W) of the check's input.
    """
    source: str
    settings: Dict
    state_dict: Dict
    head: nn.Module
    model: nn.Module
    logits: Callable
    input_size: Tuple[int, int, int]


#: Backbone settings read from the given model; ``backbone_kwargs`` may
#: override only ``drop_path_rate`` (a training setting) among them.
OVERRIDABLE = ('drop_path_rate', )
#: DyTVisionTransformer arguments get_dyt_model sets itself.
RESERVED = ('pretrained', 'init_cfg', 'out_indices', 'proj_dims', 'lora_rank', 'lora_alpha',
            'final_norm', 'out_type')


def activation_name(act):
    """The DyT ``act`` name ('gelu', 'gelu_tanh', 'quick_gelu') an activation
    module computes, decided by its outputs; None for anything else."""
    x = torch.linspace(-6, 6, 241)
    candidates = {'gelu': F.gelu(x), 'gelu_tanh': F.gelu(x, approximate='tanh'),
                  'quick_gelu': x * torch.sigmoid(1.702 * x)}
    try:
        with torch.no_grad():
            y = act(x.clone())
    except Exception:  # noqa: BLE001 - an activation that cannot run on a vector
        return None
    return next((name for name, ref in candidates.items()
                 if torch.allclose(y, ref, rtol=0, atol=1e-6)), None)


def layer_norm_eps(norm):
    """eps of an affine ``nn.LayerNorm`` with bias, else None."""
    if not isinstance(norm, nn.LayerNorm) or not norm.elementwise_affine or norm.bias is None:
        return None
    return norm.eps


def drop_path_rate(rates, problems):
    """The ``drop_path_rate`` of per-block stochastic-depth rates that rise
    linearly from 0 (DyT's schedule); anything else is a problem."""
    rate = float(rates[-1]) if rates else 0.0
    expected = torch.linspace(0, rate, len(rates)).tolist()
    if any(abs(a - b) > 1e-6 for a, b in zip(rates, expected)):
        problems.append(f'a drop-path schedule that does not rise linearly from 0 ({rates})')
    return rate


def read_base_model(model):
    """The :class:`BaseModel` of a timm or mmpretrain ViT."""
    if isinstance(model, DyTModel):
        raise ValueError('the model is already a DyTModel')
    module = type(model).__module__
    if module.startswith('timm.'):
        from .timm_vit import read_timm_vit
        return read_timm_vit(model)
    if module.startswith('mmpretrain.'):
        from .mmpretrain_vit import read_mmpretrain_vit
        return read_mmpretrain_vit(model)
    if isinstance(model, nn.Module) and any(isinstance(m, DyTVisionTransformer)
                                            for m in model.modules()):
        raise ValueError(f'{type(model).__name__} already holds a DyTVisionTransformer')
    raise TypeError('get_dyt_model takes a timm VisionTransformer or an mmpretrain '
                    f'VisionTransformer / ImageClassifier, got {module}.{type(model).__name__}')


@contextlib.contextmanager
def evaluating(*models):
    """Within the block the models are in eval mode; each module's own mode
    is restored after."""
    modes = [(m, m.training) for model in models for m in model.modules()]
    for model in models:
        model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


def check_equal(dyt, base):
    """Refuse a DyT model whose logits differ from the given model's on a
    random batch, dispatch off (the masked path with every token active)."""
    param = next(dyt.parameters())
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, *base.input_size, generator=generator).to(param.device, param.dtype)
    backbone = dyt.backbone
    dense = all_tokens_active(backbone.dispatchers())
    skip, backbone.skip_inactive = backbone.skip_inactive, False
    try:
        with torch.no_grad(), evaluating(dyt, base.model), dense:
            got = dyt(x)
            expected = base.logits(x)
    finally:
        backbone.skip_inactive = skip
    tolerance = 1e-4 if param.dtype in (torch.float32, torch.float64) else 2e-2
    diff = float((got.float() - expected.float()).abs().max())
    scale = float(expected.float().abs().max())
    if not diff <= tolerance * (1 + scale):
        raise ValueError(
            f'the DyT model built from {base.source} does not reproduce its logits (max '
            f'difference {diff:.3g} at a scale of {scale:.3g}): the model has a setting '
            'get_dyt_model does not read. Please report it; verify=False skips this check')


def get_dyt_model(model, dispatch='mlp', adapter_dim=64, num_experts=1, target_rate=None,
                  petl=None, *, rate_loss_weight=2.0, verify=True, **backbone_kwargs):
    """Dynamic Tuning for a timm or mmpretrain Vision Transformer.

    Builds a :class:`~mmdyt.models.backbones.DyTVisionTransformer` with the
    architecture of ``model``, loads ``model``'s weights into it (through
    :func:`~mmdyt.models.backbones.load_vit_checkpoint`) and keeps a copy of
    ``model``'s classifier head. ``model`` itself is left unchanged.

    Args:
        model (nn.Module): a timm ``VisionTransformer`` (supervised, DeiT III,
            DINOv2 with or without registers, CLIP, SigLIP, ...), or an
            mmpretrain ``VisionTransformer`` or ``ImageClassifier`` with one.
        dispatch (str | None): 'mlp', 'attn', 'attn_mlp', 'layer', or None (no
            token dispatch: AdaptFormer with ``adapter_dim``, a plain frozen
            ViT without).
        adapter_dim (int | None): adapter bottleneck d; None = no adapters.
        num_experts (int): adapter experts (> 1: MoE-adapter).
        target_rate (float | None): r of :meth:`DyTModel.rate_loss`.
        petl (dict | list[dict] | None): PETL layers, e.g.
            ``dict(type='lora', rank=8, targets=['qkv'])``.
        rate_loss_weight (float): alpha of the rate loss.
        verify (bool): check that the DyT model (dispatch off, new modules at
            their zero init) gives the given model's logits on a random batch
            (skipped with VPT prompts or a token reduction, which change the
            output from the start).
        **backbone_kwargs: other DyTVisionTransformer arguments (``tau``,
            ``adapter_scale``, ``adapter_dropout``, ``drop_path_rate``,
            ``num_prompts``, ``capacity``, ``token_reduction``,
            ``freeze_pretrained`` ...); architecture settings are read from
            ``model`` and refused here.

    Returns:
        DyTModel: on ``model``'s device and dtype, in its train / eval mode;
        pretrained weights frozen, adapters, dispatchers, PETL and head
        trainable.

    Raises:
        UnsupportedModelError: ``model`` has a feature DyTVisionTransformer
            has no setting for (each is named).
        TypeError: ``model`` is neither a timm nor an mmpretrain ViT.
        ValueError: an architecture setting in ``backbone_kwargs``, a bad
            DyT setting, or (``verify``) logits that differ.
    """
    base = read_base_model(model)
    fixed = sorted((set(base.settings) - set(OVERRIDABLE) | set(RESERVED)) & set(backbone_kwargs))
    if fixed:
        raise ValueError(f'get_dyt_model reads {fixed} from the model (or sets them itself); '
                         'do not pass them (to change the input size, create the model at '
                         'that size)')
    settings = dict(base.settings, dispatch=dispatch, adapter_dim=adapter_dim,
                    num_experts=num_experts, petl=petl)
    settings.update(backbone_kwargs)
    backbone = DyTVisionTransformer(**settings)
    load_vit_checkpoint(backbone, base.state_dict)
    for param in base.head.parameters():
        param.requires_grad = True
    dyt = DyTModel(backbone, base.head, target_rate, rate_loss_weight)
    reference = next(iter(model.parameters()), None)
    if reference is not None:
        dyt.to(device=reference.device, dtype=reference.dtype)
    dyt.train(model.training)
    if verify and not backbone.num_prompts and backbone.token_reduction is None:
        check_equal(dyt, base)
    return dyt
