"""ONNX export of DyT models that keeps the token skipping, and its check.

``torch.onnx.export(dynamo=True)`` traces the model with ``torch.export``:
the number of active tokens of each dispatcher is a data-dependent size, so
the graph selects the tokens at run time (``NonZero`` -> ``Gather`` -> the
part on the active tokens -> ``ScatterND`` with add) instead of freezing the
example's pattern, as ``torch.jit.trace`` and the TorchScript exporter did
(the skipping path refuses those). The batch size stays dynamic.

:func:`check_onnx` runs the exported file in ONNX Runtime against PyTorch on
inputs whose activation patterns differ from the export example: random
inputs of other batch sizes as trained, and the gates' biases moved so that
every patch token is active, none is, or half of them (the same biases are
written into a copy of the ONNX graph's initializers).

The exported graph takes the preprocessed batch (normalized, (B, 3, H, W);
a recognizer's (B, views, 3, T, H, W) clips) and returns the model's
``tensor`` output (logits, segmentation logits, a recognizer's class scores
per view or the backbone's outputs), flattened into a list.
"""
import contextlib
import copy
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from ..analysis.benchmark import backbone_inputs, force_activation_rate
from ..analysis.flops import _TensorForward
from ..models.record import record_forwards
from ..models.task_utils import find_dyt_backbone

DEFAULT_OPSET = 20
#: ONNX ops that only a graph selecting tokens at run time contains.
SKIPPING_OPS = ('NonZero', 'ScatterND')
#: Gate bias (logit offset) that activates (or, negated, deactivates) every token.
FORCE_BIAS = 1e4


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote.

    Attributes:
        path (str): the ``.onnx`` file.
        mode (str): 'skipping' (the graph selects the active tokens at run
            time), 'capacity' (capacity mode, static shapes), 'masked'
            (every token computed, not skipping) or 'dense' (no dispatchers).
        dynamic_batch (bool): the batch dimension is symbolic.
        opset (int): ONNX opset.
        op_counts (dict[str, int]): ONNX op type -> nodes.
    """
    path: str
    mode: str
    dynamic_batch: bool
    opset: int
    op_counts: dict = field(default_factory=dict)

    def __str__(self):
        ops = ', '.join(f'{op} x{self.op_counts.get(op, 0)}' for op in SKIPPING_OPS)
        kind = {'skipping': f'skipping path (tokens selected at run time: {ops})',
                'capacity': 'capacity mode (a fixed number of tokens per sample, static '
                            'shapes)',
                'masked': 'masked path, NOT skipping: every token is computed',
                'dense': 'no dispatchers (dense)'}[self.mode]
        batch = 'dynamic batch' if self.dynamic_batch else 'fixed batch'
        return f'{self.path}: {kind}, {batch}, opset {self.opset}'


@dataclass
class CheckResult:
    """One comparison of :func:`check_onnx`.

    Attributes:
        pattern (str): 'as trained', 'all on', 'all off' or 'half on'.
        batch_size (int): B.
        rate (float | None): mean activation rate of the PyTorch forward
            (None without dispatchers).
        max_abs_diff (float): largest |ONNX Runtime - PyTorch| over the
            outputs.
    """
    pattern: str
    batch_size: int
    rate: float
    max_abs_diff: float

    def __str__(self):
        rate = '' if self.rate is None else f', activation rate {self.rate:.3f}'
        return (f'{self.pattern:>9}, batch {self.batch_size}{rate}: max |ORT - PyTorch| '
                f'{self.max_abs_diff:.2e}')


class ExportCheckError(RuntimeError):
    """ONNX Runtime and PyTorch disagree beyond the tolerance."""


def _leaves(outputs):
    """A tensor or nested tuples / lists of tensors -> flat list."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [leaf for out in outputs for leaf in _leaves(out)]


class _Flat(_TensorForward):
    """The model's tensor forward, outputs flattened (what the graph returns)."""

    def forward(self, inputs):
        return tuple(_leaves(super().forward(inputs)))


@contextlib.contextmanager
def _masked_path(backbone, masked):
    """Within the block, the DyT ``backbone`` runs its masked path when
    ``masked`` (every token computed)."""
    if backbone is None or not masked:
        yield
        return
    previous = backbone.skip_inactive
    backbone.skip_inactive = False
    try:
        yield
    finally:
        backbone.skip_inactive = previous


@contextlib.contextmanager
def _distinct_gate_biases(model):
    """Within the block, every gate bias differs from the others, so the
    exporter keeps each as its own named initializer (it merges equal ones,
    e.g. zero-initialised gates); :func:`export_onnx` writes the real values
    back."""
    biases = list(gate_bias_names(model))
    original = [bias.detach().clone() for bias in biases]
    with torch.no_grad():
        for i, bias in enumerate(biases):
            bias.add_((i + 1) * 2.0**-8)
    try:
        yield
    finally:
        with torch.no_grad():
            for bias, value in zip(biases, original):
                bias.copy_(value)


def export_onnx(model, path, example, dynamic_batch=True, opset=DEFAULT_OPSET,
                masked=False):
    """Export ``model`` to ONNX, keeping the token skipping.

    Args:
        model (nn.Module): a classifier / segmentor (its ``tensor`` forward)
            or a bare backbone, in eval mode.
        path (str): the ``.onnx`` file to write (weights inside).
        example (Tensor): a preprocessed batch, (B, 3, H, W) (a recognizer's
            (B, views, 3, T, H, W)), B >= 2 when
            ``dynamic_batch`` (torch.export specializes sizes 0 and 1).
        dynamic_batch (bool): keep the batch dimension symbolic.
        opset (int): ONNX opset.
        masked (bool): export the masked path instead (every token is
            computed and multiplied by its mask; a fallback, not skipping).

    Returns:
        ExportReport

    Raises:
        RuntimeError: a skipping export whose graph does not select tokens.
    """
    if model.training:
        raise ValueError('export a model in eval mode (model.eval())')
    if dynamic_batch and example.shape[0] < 2:
        raise ValueError('a dynamic-batch export needs an example batch of at least 2 '
                         f'samples, got {example.shape[0]}')
    backbone = find_dyt_backbone(model)
    dynamic = ({0: torch.export.Dim('batch')}, ) if dynamic_batch else None
    with _masked_path(backbone, masked), _distinct_gate_biases(model), torch.no_grad():
        program = torch.onnx.export(_Flat(model).eval(), (example, ), dynamo=True,
                                    dynamic_shapes=dynamic, opset_version=opset,
                                    input_names=['inputs'], verbose=False)
    program.save(str(path), external_data=False)
    import onnx
    onnx_model = with_gate_biases(onnx.load(str(path)), model)
    onnx.save(onnx_model, str(path))
    graph = onnx_model.graph
    ops = Counter(node.op_type for node in graph.node)
    if backbone is None or not backbone.dispatchers():
        mode = 'dense'
    else:
        mode = ('masked' if masked else
                'capacity' if getattr(backbone, 'capacity', None) else 'skipping')
    if mode == 'skipping' and not all(ops.get(op, 0) for op in SKIPPING_OPS):
        raise RuntimeError(f'{path}: the exported graph has no {" / ".join(SKIPPING_OPS)} '
                           'nodes, it does not select tokens at run time')
    batch_dim = graph.input[0].type.tensor_type.shape.dim[0]
    return ExportReport(str(path), mode, bool(batch_dim.dim_param), opset, dict(ops))


def gate_bias_names(model):
    """Dispatcher gate bias -> its name in the exported graph (the name of
    the parameter under the export wrapper)."""
    backbone = find_dyt_backbone(model)
    if backbone is None:
        return {}
    names = {id(p): f'model.{name}' for name, p in model.named_parameters()}
    return {d.gate.bias: names[id(d.gate.bias)] for d in backbone.dispatchers()}


def _session(onnx_model, threads=None, profile_prefix=None):
    """A CPU ONNX Runtime session of ``onnx_model`` (an ``onnx.ModelProto``):
    all graph optimizations, sequential execution, ``threads`` intra-op
    threads (ORT's default when None) and one inter-op thread; with
    ``profile_prefix``, ORT's profiling on (``{profile_prefix}_*.json``)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    return ort.InferenceSession(onnx_model.SerializeToString(), options,
                                providers=['CPUExecutionProvider'])


class OnnxRuntimeModel(nn.Module):
    """An exported graph in an ONNX Runtime session, called like the tensor
    forward it was exported from (for timing it next to PyTorch models).

    Args:
        onnx_model (onnx.ModelProto): e.g. ``with_gate_biases(onnx.load(path),
            model)``.
        threads (int | None): intra-op threads.
        profile_prefix (str | None): turn ORT's profiling on, the trace
            written by ``self.session.end_profiling()``.

    Shapes:
        inputs: the preprocessed (B, 3, H, W) batch -> tuple of outputs.
    """

    def __init__(self, onnx_model, threads=None, profile_prefix=None):
        super().__init__()
        self.session = _session(onnx_model, threads, profile_prefix)

    def forward(self, inputs):
        outputs = self.session.run(None, {'inputs': inputs.cpu().numpy()})
        return tuple(torch.from_numpy(out) for out in outputs)


def with_gate_biases(onnx_model, model):
    """A copy of ``onnx_model`` whose gate bias initializers hold the
    current biases of ``model``'s dispatchers."""
    from onnx import numpy_helper
    out = copy.deepcopy(onnx_model)
    initializers = {init.name: init for init in out.graph.initializer}
    for bias, name in gate_bias_names(model).items():
        if name not in initializers:
            raise ValueError(f'the gate bias {name} is not an initializer of the ONNX graph')
        initializers[name].CopyFrom(
            numpy_helper.from_array(bias.detach().cpu().numpy(), name))
    return out


def _set_gate_biases(model, biases):
    with torch.no_grad():
        for bias, value in biases.items():
            bias.copy_(value)


def _patterns(model, batch_sizes, shape, generator):
    """(pattern, batch size, inputs) with ``model``'s gate biases set for it
    (restored at the end)."""
    backbone = find_dyt_backbone(model)
    original = {bias: bias.detach().clone() for bias in gate_bias_names(model)}
    try:
        for batch_size in batch_sizes:
            inputs = 3 * torch.randn(batch_size, *shape, generator=generator)
            yield 'as trained', batch_size, inputs
        if not original:
            return
        for pattern, offset in (('all on', FORCE_BIAS), ('all off', -FORCE_BIAS)):
            _set_gate_biases(model, {b: v + offset for b, v in original.items()})
            yield pattern, batch_sizes[-1], torch.randn(batch_sizes[-1], *shape,
                                                        generator=generator)
        _set_gate_biases(model, original)
        # half of the patch tokens of another batch: moves the biases only
        other = torch.randn(batch_sizes[-1], *shape, generator=generator)
        force_activation_rate(backbone, 0.5, backbone_inputs(backbone, other))
        yield 'half on', batch_sizes[-1], torch.randn(batch_sizes[-1], *shape,
                                                      generator=generator)
    finally:
        _set_gate_biases(model, original)


@torch.no_grad()
def check_onnx(model, path, shape, batch_sizes=(1, 3, 8), tolerance=1e-4, seed=0):
    """Compare the exported ``path`` in ONNX Runtime with ``model`` in
    PyTorch on activation patterns unlike the export example's.

    Args:
        model (nn.Module): the exported model, eval mode (its gate biases are
            changed during the check and restored).
        path (str): its ``.onnx`` file.
        shape (tuple): one sample of the input, e.g. (3, 224, 224), or a
            recognizer's (views, 3, T, H, W).
        batch_sizes (Sequence[int]): batch sizes of the 'as trained' inputs;
            the last one is used for the forced patterns.
        tolerance (float): largest allowed |ORT - PyTorch|.
        seed (int): of the random inputs.

    Returns:
        list[CheckResult]

    Raises:
        ExportCheckError: a comparison is above ``tolerance`` or a forced
            pattern was not reached; the message lists every comparison.
    """
    import onnx
    onnx_model = onnx.load(str(path))
    backbone = find_dyt_backbone(model)
    wrapped = _Flat(model).eval()
    generator = torch.Generator().manual_seed(seed)
    results, problems = [], []
    sessions = {}
    for pattern, batch_size, inputs in _patterns(model, list(batch_sizes), shape, generator):
        if pattern not in sessions:
            sessions = {pattern: _session(with_gate_biases(onnx_model, model))}
        if backbone is not None:
            with record_forwards(backbone) as records:
                expected = wrapped(inputs)
            rates = records[0].activation_rates()
            rate = rates.mean().item() if rates.numel() else None
        else:
            expected, rate = wrapped(inputs), None
        got = sessions[pattern].run(None, {'inputs': inputs.numpy()})
        diff = max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected))
        results.append(CheckResult(pattern, batch_size, rate, diff))
        if not diff <= tolerance:
            problems.append(f'{results[-1]} > {tolerance}')
        wanted = {'all on': 1.0, 'all off': 0.0}.get(pattern)
        if wanted is not None and rate is not None and rate != wanted:
            problems.append(f'{pattern}: activation rate {rate:.3f}, not {wanted}')
    if problems:
        raise ExportCheckError(f'{path} does not match PyTorch: ' + '; '.join(problems) +
                               '\n' + '\n'.join(map(str, results)))
    return results
