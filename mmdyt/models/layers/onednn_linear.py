"""Linear layers of CPU inference through oneDNN, with the GELU fused.

PyTorch's CPU ``F.linear`` calls MKL's GEMM. On the AMD EPYC machines of this
project oneDNN's inner product (``torch.ops.mkldnn._linear_pointwise``, the
kernel ``torch.compile`` uses on CPU) is 10-30 % faster for the token counts
of ViT inference, most for the small batches the skipping path produces, and
it applies the MLP's exact (erf) GELU in the same pass. Results agree with
``F.linear`` to float rounding (about 1e-6 relative).

oneDNN costs ~15 us more per call, so small layers (a 96-wide demo ViT,
ViT-S's proj at batch 1) are slower on it: it is used only from
``MIN_MULTIPLY_ADDS`` (2**25) multiply-adds per call, tokens x C_in x C_out
(ViT-B's smallest, proj at 99 tokens, has 5.8e7). Measured by
``tools/analysis_tools/benchmark.py CONFIG --kernels``.

The oneDNN kernel is used only when no gradient is recorded, for a plain
``nn.Linear`` without forward hooks on a CPU float32 / bfloat16 tensor of the
weight's dtype and a PyTorch built with oneDNN, outside tracing, ONNX export
and ``torch.compile`` (which pick their own kernels); everything else goes
through the module itself, so hooks and patched-in PETL modules see their
calls. ``MMDYT_ONEDNN_LINEAR=0`` in the environment, or
``set_onednn_linear(False)``, turns it off (``benchmark.py --no-onednn``).
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

_DTYPES = (torch.float32, torch.bfloat16)
MIN_MULTIPLY_ADDS = 2**25


def _onednn_op():
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        return None


_LINEAR_POINTWISE = _onednn_op()
_enabled = os.environ.get('MMDYT_ONEDNN_LINEAR', '1') != '0'


def set_onednn_linear(enabled):
    """Turn the oneDNN inference kernels on or off; returns the old state."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    return previous


def onednn_linear_enabled():
    """Whether :func:`linear` may use oneDNN (switch on and kernel built)."""
    return _enabled and _LINEAR_POINTWISE is not None


def _capturing_graph():
    return (torch.jit.is_tracing() or torch.jit.is_scripting()
            or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling())


def _has_hooks(layer):
    return bool(layer._forward_hooks or layer._forward_pre_hooks
                or nn.modules.module._global_forward_hooks
                or nn.modules.module._global_forward_pre_hooks)


def uses_onednn(layer, x):
    """Whether :func:`linear` runs ``layer`` on ``x`` with oneDNN."""
    return (type(layer) is nn.Linear and onednn_linear_enabled()
            and not torch.is_grad_enabled() and x.device.type == 'cpu'
            and x.dtype in _DTYPES and layer.weight.dtype == x.dtype
            and x.numel() * layer.out_features >= MIN_MULTIPLY_ADDS
            and not _has_hooks(layer) and not _capturing_graph())


def onednn_inner_product(layer, x, gelu=False):
    """oneDNN's inner product for an ``nn.Linear`` (+ exact GELU), without
    the checks of :func:`linear`: x on the CPU, of the weight's dtype."""
    if _LINEAR_POINTWISE is None:
        raise RuntimeError('this PyTorch was built without oneDNN (mkldnn)')
    return _LINEAR_POINTWISE(x, layer.weight, layer.bias, 'gelu' if gelu else 'none', [],
                             'none' if gelu else '')


def linear(layer, x, gelu=False):
    """``layer(x)``, followed by the exact GELU when ``gelu``.

    Args:
        layer (nn.Module): usually an ``nn.Linear`` (C_in -> C_out); any
            module (LoRA, RepAdapter) is called as it is.
        x (Tensor): (..., C_in).
        gelu (bool): apply ``F.gelu`` (erf) to the output.

    Returns:
        Tensor: (..., C_out).
    """
    if uses_onednn(layer, x):
        return onednn_inner_product(layer, x, gelu)
    out = layer(x)
    return F.gelu(out) if gelu else out
