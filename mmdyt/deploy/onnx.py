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
every patch token is active, none is, or half of them (one ONNX Runtime
session, fed the same biases for the graph's gate bias initializers).

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

from ..models.record import record_forwards
from ..models.task_model import (TensorForward, backbone_inputs, find_dyt_backbone,
                                 forced_activation_rate)

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


class _Flat(TensorForward):
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
def _distinct_gate_biases(model, backbone):
    """Within the block, every gate bias differs from the others, so the
    exporter keeps each as its own named initializer (it merges equal ones,
    e.g. zero-initialised gates); :func:`export_onnx` writes the real values
    back."""
    biases = list(gate_bias_names(model, backbone))
    with _offset_gate_biases(biases, [(i + 1) * 2.0**-8 for i in range(len(biases))]):
        yield


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
    with _masked_path(backbone, masked), _distinct_gate_biases(model, backbone), \
            torch.no_grad():
        program = torch.onnx.export(_Flat(model).eval(), (example, ), dynamo=True,
                                    dynamic_shapes=dynamic, opset_version=opset,
                                    input_names=['inputs'], verbose=False)
    program.save(str(path), external_data=False)
    import onnx
    onnx_model = _with_biases(onnx.load(str(path)), gate_bias_names(model, backbone))
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


def gate_bias_names(model, backbone):
    """Dispatcher gate bias -> its name in the exported graph (the name of
    the parameter under the export wrapper); ``backbone``: the DyT backbone
    of ``model`` (:func:`find_dyt_backbone`) or None."""
    if backbone is None:
        return {}
    names = {id(p): f'model.{name}' for name, p in model.named_parameters()}
    return {d.gate.bias: names[id(d.gate.bias)] for d in backbone.dispatchers()}


def _session(onnx_model, threads=None, profile_prefix=None, quiet=False):
    """A CPU ONNX Runtime session of ``onnx_model`` (an ``onnx.ModelProto``):
    all graph optimizations, sequential execution, ``threads`` intra-op
    threads (ORT's default when None) and one inter-op thread; with
    ``profile_prefix``, ORT's profiling on (``{profile_prefix}_*.json``);
    ``quiet``: ORT logs errors only (not the warning that fed initializers
    are not constants)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if quiet:
        options.log_severity_level = 3
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


def _gate_initializers(onnx_model, names):
    """``onnx_model``'s initializers named ``names`` (the gate biases)."""
    initializers = {init.name: init for init in onnx_model.graph.initializer}
    missing = [name for name in names if name not in initializers]
    if missing:
        raise ValueError(f'the gate bias {missing[0]} is not an initializer of the ONNX graph')
    return [initializers[name] for name in names]


def _with_biases(onnx_model, bias_names):
    """A copy of ``onnx_model`` whose initializers of ``bias_names`` (gate
    bias -> name, :func:`gate_bias_names`) hold the biases' current values."""
    from onnx import numpy_helper
    out = copy.deepcopy(onnx_model)
    for init, (bias, name) in zip(_gate_initializers(out, list(bias_names.values())),
                                  bias_names.items()):
        init.CopyFrom(numpy_helper.from_array(bias.detach().cpu().numpy(), name))
    return out


def with_gate_biases(onnx_model, model):
    """A copy of ``onnx_model`` whose gate bias initializers hold the
    current biases of ``model``'s dispatchers."""
    return _with_biases(onnx_model, gate_bias_names(model, find_dyt_backbone(model)))


def _fed_gate_biases(onnx_model, names):
    """A copy of ``onnx_model`` in which the gate bias initializers
    ``names`` are also graph inputs, so that a session run can feed them
    (ONNX Runtime's overridable initializers)."""
    from onnx import helper
    out = copy.deepcopy(onnx_model)
    out.graph.input.extend(
        helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
        for init in _gate_initializers(out, names))
    return out


@contextlib.contextmanager
def _offset_gate_biases(biases, offsets):
    """Within the block, every one of ``biases`` is moved by its offset in
    ``offsets`` (a list), or all by ``offsets`` (a number); their values are
    restored bit for bit on the way out."""
    if not isinstance(offsets, (list, tuple)):
        offsets = [offsets] * len(biases)
    original = [bias.detach().clone() for bias in biases]
    with torch.no_grad():
        for bias, value, offset in zip(biases, original, offsets):
            bias.copy_(value + offset)
    try:
        yield
    finally:
        with torch.no_grad():
            for bias, value in zip(biases, original):
                bias.copy_(value)


def _patterns(backbone, biases, batch_sizes, shape, generator):
    """(pattern, batch size, inputs), the ``backbone``'s gate ``biases`` set
    for the pattern while it is used (and restored after it)."""
    for batch_size in batch_sizes:
        inputs = 3 * torch.randn(batch_size, *shape, generator=generator)
        yield 'as trained', batch_size, inputs
    if not biases:
        return
    for pattern, offset in (('all on', FORCE_BIAS), ('all off', -FORCE_BIAS)):
        with _offset_gate_biases(biases, offset):
            yield pattern, batch_sizes[-1], torch.randn(batch_sizes[-1], *shape,
                                                        generator=generator)
    # half of the patch tokens of another batch: moves the biases only
    other = torch.randn(batch_sizes[-1], *shape, generator=generator)
    with forced_activation_rate(backbone, 0.5, backbone_inputs(backbone, other)):
        yield 'half on', batch_sizes[-1], torch.randn(batch_sizes[-1], *shape,
                                                      generator=generator)


@torch.no_grad()
def check_onnx(model, path, shape, batch_sizes=(1, 3, 8), tolerance=1e-4, seed=0):
    """Compare the exported ``path`` in ONNX Runtime with ``model`` in
    PyTorch on activation patterns unlike the export example's.

    One ONNX Runtime session runs every comparison; each run feeds the gate
    biases of ``model`` in place of the graph's gate bias initializers.

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
    backbone = find_dyt_backbone(model)
    bias_names = gate_bias_names(model, backbone)
    session = _session(_fed_gate_biases(onnx.load(str(path)), list(bias_names.values())),
                       quiet=True)
    wrapped = _Flat(model).eval()
    generator = torch.Generator().manual_seed(seed)
    results, problems = [], []
    patterns = _patterns(backbone, list(bias_names), list(batch_sizes), shape, generator)
    with contextlib.closing(patterns):
        for pattern, batch_size, inputs in patterns:
            if backbone is not None:
                with record_forwards(backbone) as records:
                    expected = wrapped(inputs)
                rates = records[0].activation_rates()
                rate = rates.mean().item() if rates.numel() else None
            else:
                expected, rate = wrapped(inputs), None
            feed = {name: bias.detach().cpu().numpy() for bias, name in bias_names.items()}
            got = session.run(None, dict(feed, inputs=inputs.numpy()))
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
