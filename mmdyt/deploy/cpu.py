"""CPU inference of the linear layers on oneDNN, an explicit deploy step.

PyTorch's CPU ``F.linear`` calls MKL's GEMM. oneDNN's inner product
(``torch.ops.mkldnn._linear_pointwise``, the kernel ``torch.compile`` uses on
CPU) can be faster for the token counts of ViT inference, most for the small
batches the skipping path produces, and applies the MLP's exact (erf) GELU
in the same pass; results agree with ``F.linear`` to float rounding. Whether
it is faster, and whether it runs at all for a dtype, depends on the CPU
(bfloat16 failed to create its primitive on an AMD EPYC without AVX-512), so
models run aten's kernels unless :func:`fuse_for_cpu` is applied, which
first checks the kernel on this CPU.
"""
import logging
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.wrappers import Linear as MMCVLinear
from mmengine.logging import print_log

ONEDNN_DTYPES = (torch.float32, torch.bfloat16)
MIN_MULTIPLY_ADDS = 2**25
_PROBE_TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 3e-2}
#: Exactly these types are fused: mmcv's Linear (mmpretrain's FFN) is
#: ``nn.Linear`` with an empty-input fix for torch < 1.5.
PLAIN_LINEAR_TYPES = (nn.Linear, MMCVLinear)


def onednn_available():
    """Whether this PyTorch has oneDNN's inner product op."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        return False
    return True


def _linear_pointwise(x, weight, bias, gelu):
    """oneDNN's inner product (+ exact GELU): (..., C_in) -> (..., C_out)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, 'gelu' if gelu else 'none',
                                              [], 'none' if gelu else '')


def _capturing_graph():
    return (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling())


class OneDNNLinear(nn.Linear):
    """An ``nn.Linear`` (+ exact GELU) that runs on oneDNN in CPU inference.

    Shares the ``weight`` and ``bias`` Parameters of the layer it replaces
    (same state-dict keys). oneDNN is used only without autograd and
    autocast, on a CPU input of the weight's dtype among ``dtypes``, of at
    least ``min_multiply_adds`` (tokens x C_in x C_out), outside tracing,
    TorchScript, ONNX export and ``torch.compile`` (which record the portable
    ops); everything else runs ``F.linear`` (+ ``F.gelu``).

    Args:
        linear (nn.Linear): the layer, C_in -> C_out.
        gelu (bool): apply the exact GELU to the output.
        dtypes (tuple[torch.dtype]): the dtypes the kernel was checked for.
        min_multiply_adds (int): smallest call that goes to oneDNN.
    """

    def __init__(self, linear, gelu=False, dtypes=ONEDNN_DTYPES,
                 min_multiply_adds=MIN_MULTIPLY_ADDS):
        super().__init__(linear.in_features, linear.out_features, linear.bias is not None,
                         device='meta')
        self.weight = linear.weight
        self.bias = linear.bias
        self.gelu = gelu
        self.dtypes = tuple(dtypes)
        self.min_multiply_adds = min_multiply_adds

    @torch.jit.unused
    def uses_onednn(self, x):
        """Whether :meth:`forward` runs ``x`` (..., C_in) on oneDNN."""
        return (not torch.is_grad_enabled() and not _capturing_graph()
                and x.device.type == 'cpu' and x.dtype in self.dtypes
                and x.dtype == self.weight.dtype and not torch.is_autocast_enabled('cpu')
                and x.numel() * self.out_features >= self.min_multiply_adds)

    def forward(self, x):
        """(..., C_in) -> (..., C_out)."""
        if not torch.jit.is_scripting() and self.uses_onednn(x):
            return _linear_pointwise(x, self.weight, self.bias, self.gelu)
        out = F.linear(x, self.weight, self.bias)
        return F.gelu(out) if self.gelu else out

    def extra_repr(self):
        return (f'{super().extra_repr()}, gelu={self.gelu}, '
                f'min_multiply_adds={self.min_multiply_adds}')


def probe_onednn(dtype):
    """Run oneDNN's inner product on a tiny input of ``dtype``, with and
    without bias and GELU, against ``F.linear``.

    Returns:
        str | None: why the kernel cannot be used here, None when it works.
    """
    if not onednn_available():
        return 'this PyTorch has no oneDNN (mkldnn) inner product'
    if dtype not in ONEDNN_DTYPES:
        return f'oneDNN linear layers take float32 or bfloat16, not {dtype}'
    generator = torch.Generator().manual_seed(0)
    x, weight, bias = (0.3 * torch.randn(*shape, generator=generator).to(dtype)
                       for shape in ((4, 16), (8, 16), (8, )))
    tolerance = _PROBE_TOLERANCE[dtype]
    with torch.no_grad():
        for b in (bias, None):
            for gelu in (False, True):
                expected = F.linear(x, weight, b)
                expected = F.gelu(expected) if gelu else expected
                try:
                    out = _linear_pointwise(x, weight, b, gelu)
                except RuntimeError as error:
                    return f'{dtype}: {error}'
                if not torch.allclose(out.float(), expected.float(), rtol=tolerance,
                                      atol=tolerance):
                    error = (out.float() - expected.float()).abs().max().item()
                    return (f'{dtype}: oneDNN differs from F.linear by {error:.3g} '
                            f'(bias={b is not None}, gelu={gelu})')
    return None


@dataclass
class FuseReport:
    """What :func:`fuse_for_cpu` did: ``linears`` layers now on
    :class:`OneDNNLinear`, ``gelus`` of them with the GELU fused, for
    ``dtypes`` and calls from ``min_multiply_adds``; ``reason`` says why
    nothing was fused (None otherwise)."""
    linears: int = 0
    gelus: int = 0
    dtypes: tuple = ()
    min_multiply_adds: int = MIN_MULTIPLY_ADDS
    reason: str = None

    def __str__(self):
        if self.reason is not None:
            return f'oneDNN not used, aten kernels kept: {self.reason}'
        dtypes = ', '.join(str(d).replace('torch.', '') for d in self.dtypes)
        return (f'oneDNN via fuse_for_cpu: {self.linears} linear layers ({self.gelus} '
                f'with GELU fused), {dtypes}, calls from {self.min_multiply_adds} '
                'multiply-adds')


def _containers(model):
    """The modules of ``model`` whose children may be fused, each once: all
    but ``nn.Linear`` and its subclasses (PETL layers, whose inner linears
    are theirs to run) and what is inside those."""
    found, stack = {}, [model]
    while stack:
        module = stack.pop()
        if id(module) not in found and not isinstance(module, nn.Linear):
            found[id(module)] = module
            stack += reversed(list(module.children()))
    return list(found.values())


def _plain_linear(module):
    """A plain linear layer without hooks (PETL subclasses are left alone)."""
    return type(module) in PLAIN_LINEAR_TYPES and not (module._forward_hooks
                                                       or module._forward_pre_hooks)


def _exact_gelu(module):
    return type(module) is nn.GELU and module.approximate == 'none'


def _gelu_sites(model):
    """(parent, fc name, GELU name) where a plain linear's whole output goes
    through an exact GELU and nowhere else: in an ``nn.Sequential`` a linear
    directly followed by the GELU; elsewhere a module's ``fc1`` -> ``act``
    whose ``fc2`` takes fc1's full width (which a GLU's half-width ``fc2``
    does not)."""
    sites = []
    for parent in _containers(model):
        if isinstance(parent, nn.Sequential):
            names = list(parent._modules)
            sites += [(parent, a, b) for a, b in zip(names, names[1:])
                      if _plain_linear(parent._modules[a]) and _exact_gelu(parent._modules[b])]
        elif (_plain_linear(getattr(parent, 'fc1', None))
              and _exact_gelu(getattr(parent, 'act', None))
              and getattr(getattr(parent, 'fc2', None), 'in_features', None)
              == parent.fc1.out_features):
            sites.append((parent, 'fc1', 'act'))
    return sites


def fuse_for_cpu(model, dtype=None, min_multiply_adds=MIN_MULTIPLY_ADDS):
    """Run the model's plain linear layers on oneDNN in CPU inference,
    fusing the exact GELU that follows a linear into it.

    Every module whose type is exactly one of :data:`PLAIN_LINEAR_TYPES`
    (PETL layers, their inner linears and linears with hooks are left as
    they are) becomes an :class:`OneDNNLinear` sharing its Parameters, so
    state dicts and checkpoints load unchanged; a GELU fused into its linear
    becomes ``nn.Identity``. The layers must be on the CPU, and the kernel is first
    checked on this CPU for every dtype; otherwise the model is left
    unchanged and the reason is logged. Never raises for an unusable kernel.

    Args:
        model (nn.Module): changed in place.
        dtype (torch.dtype | Sequence[torch.dtype], optional): the dtype(s)
            inference will run in. Default: those of the linear weights.
        min_multiply_adds (int): calls of fewer multiply-adds (tokens x C_in
            x C_out) stay on aten: oneDNN costs ~15 us more per call, so
            small layers (a 96-wide demo ViT, ViT-S's proj at batch 1) are
            slower on it. The default 2**25 keeps ViT-B's smallest call (proj
            at 99 tokens, 5.8e7) on oneDNN; measured by
            ``tools/analysis_tools/benchmark.py CONFIG --kernels``.

    Returns:
        FuseReport: the number of layers fused, or why none was.
    """
    sites = [(parent, name) for parent in _containers(model)
             for name, child in parent.named_children() if _plain_linear(child)]
    if dtype is None:
        dtypes = tuple(dict.fromkeys(getattr(parent, name).weight.dtype
                                     for parent, name in sites))
    else:
        dtypes = tuple(dtype) if isinstance(dtype, (tuple, list)) else (dtype, )
    devices = {getattr(parent, name).weight.device.type for parent, name in sites}
    if not sites:
        reason = 'the model has no plain linear layer'
    elif devices != {'cpu'}:
        reason = f'the linear layers are on {", ".join(sorted(devices))}, not the CPU'
    else:
        reason = next(filter(None, map(probe_onednn, dtypes)), None)
    if reason is not None:
        report = FuseReport(dtypes=dtypes, min_multiply_adds=min_multiply_adds, reason=reason)
        print_log(str(report), logger='current', level=logging.WARNING)
        return report
    gelus = _gelu_sites(model)
    fused = {(id(parent), fc) for parent, fc, _ in gelus}
    for parent, name in sites:
        gelu = (id(parent), name) in fused
        setattr(parent, name, OneDNNLinear(getattr(parent, name), gelu, dtypes,
                                           min_multiply_adds))
    for parent, _, act in gelus:
        setattr(parent, act, nn.Identity())
    report = FuseReport(len(sites), len(gelus), dtypes, min_multiply_adds)
    print_log(str(report), logger='current')
    return report
