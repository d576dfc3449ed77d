"""A built task model (classifier, segmentor, recognizer, or a bare DyT
backbone) seen from outside: its DyT backbone, the backbone's part of its
inputs, its tensor forward, and forced activation rates of its gates."""
import contextlib
import inspect

import torch
import torch.nn as nn

from .backbones import DyTBackbone, FrameDyTVisionTransformer
from .record import ForwardRecord


def find_dyt_backbone(model):
    """The first :class:`DyTBackbone` (e.g. :class:`DyTVisionTransformer`)
    inside ``model`` (a backbone, a wrapper around one, or a whole
    classifier / segmentor / recognizer), or None."""
    for module in model.modules():
        if isinstance(module, DyTBackbone):
            return module
    return None


def require_dyt_backbone(model, owner):
    """:func:`find_dyt_backbone`, raising the one error of the task glue
    when there is none."""
    backbone = find_dyt_backbone(model)
    if backbone is None:
        raise TypeError(f'{owner} needs a DyTVisionTransformer backbone (or another DyT '
                        f'backbone, e.g. DyTSwinTransformer), got {type(model).__name__}')
    return backbone


def backbone_inputs(backbone, inputs):
    """The backbone's part of a model input: recognizer inputs (N, crops,
    C, T, H, W) fold their crops into the batch, as mmaction does."""
    if isinstance(backbone, FrameDyTVisionTransformer):
        return inputs.flatten(0, 1)
    return inputs


def tensor_forward(model, inputs):
    """The raw network output of an mmpretrain / mmseg / mmaction model (or of
    a bare backbone) for preprocessed ``inputs``, heads included."""
    if 'stage' in inspect.signature(getattr(model, '_forward', lambda: None)).parameters:
        return model._forward(inputs, stage='head')  # mmaction recognizers
    if 'mode' in inspect.signature(model.forward).parameters:
        return model(inputs, mode='tensor')
    return model(inputs)


class TensorForward(nn.Module):
    """:func:`tensor_forward` of ``model`` as a module (what ``FlopAnalyzer``
    traces, ``torch.compile`` compiles and the ONNX export exports).

    Shapes:
        inputs: the preprocessed batch -> the model's tensor output.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return tensor_forward(self.model, inputs)


@torch.no_grad()
def force_activation_rate(backbone, rate, inputs):
    """Set every dispatcher's gate bias so that a fraction ``rate`` of the
    patch tokens of ``inputs`` is active in every layer (in place; see
    :func:`forced_activation_rate` to undo it).

    Deterministic: one forward in which each gate, before it decides, moves
    its bias by the (1 - rate)-quantile of its logits on this very input (the
    median for 0.5). ``rate=1`` (``0``) zeroes the gate weights and makes
    every bias +1e4 (-1e4).

    Args:
        backbone (DyTVisionTransformer): in eval mode.
        rate (float): in [0, 1].
        inputs (Tensor): the input of the backbone, e.g. (B, 3, H, W).

    Returns:
        Tensor: (num_dispatchers,) activation rates of the resulting forward.
    """
    if not 0 <= rate <= 1:
        raise ValueError(f'rate must be in [0, 1], got {rate}')
    dispatchers = backbone.dispatchers()
    if not dispatchers:
        raise ValueError('the backbone has no dispatchers (dispatch=None)')
    if rate in (0, 1):
        for dispatcher in dispatchers:
            dispatcher.gate.weight.zero_()
            dispatcher.gate.bias.fill_(1e4 if rate == 1 else -1e4)
    else:
        def center(dispatcher, args):
            logits = dispatcher.gate(args[0][:, dispatcher.num_fixed_tokens:]).float()
            dispatcher.gate.bias -= torch.quantile(logits.flatten(), 1 - rate).to(
                dispatcher.gate.bias.dtype)

        handles = [d.register_forward_pre_hook(center) for d in dispatchers]
        try:
            backbone(inputs)
        finally:
            for handle in handles:
                handle.remove()
    record = ForwardRecord()
    backbone(inputs, record=record)
    return record.activation_rates()


@contextlib.contextmanager
def forced_activation_rate(backbone, rate, inputs):
    """:func:`force_activation_rate` within the block, undone on the way out
    (also on an error): every gate's weight and bias get back their values,
    bit for bit, in the same tensors.

    Yields:
        Tensor: (num_dispatchers,) activation rates of the forced forward.
    """
    params = [p for dispatcher in backbone.dispatchers() for p in dispatcher.gate.parameters()]
    saved = [p.detach().clone() for p in params]
    try:
        yield force_activation_rate(backbone, rate, inputs)
    finally:
        with torch.no_grad():
            for param, value in zip(params, saved):
                param.copy_(value)
