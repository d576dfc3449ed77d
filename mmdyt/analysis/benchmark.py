"""Helpers of ``tools/analysis_tools/benchmark.py``: the dense baseline (and
its FLOPs), forced activation rates, interleaved timing (also of several
models side by side) and training-step cost."""
import contextlib
import resource
import statistics
import time

import torch
import torch.nn as nn

from ..deploy import MIN_MULTIPLY_ADDS, OneDNNLinear, probe_onednn
from ..models.backbones import FrameDyTVisionTransformer
from ..models.early_exit import EarlyExitMixin
from ..models.record import ForwardRecord, record_forwards
from ..models.task_utils import find_dyt_backbone
from .flops import tensor_forward


def dense_baseline(backbone):
    """mmpretrain's own ``VisionTransformer`` (``SwinTransformer`` for a
    :class:`DyTSwinTransformer`) of the DyT backbone's arch (no adapters, no
    dispatchers), in eval mode: the model a user would otherwise run."""
    from mmpretrain.models import SwinTransformer, VisionTransformer

    from ..models.backbones import DyTSwinTransformer
    if isinstance(backbone, DyTSwinTransformer):
        arch = {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in backbone.arch_settings.items()}
        model = SwinTransformer(arch=arch, img_size=backbone.img_size,
                                patch_size=backbone.patch_size,
                                window_size=backbone.window_size, drop_path_rate=0.0,
                                out_indices=tuple(backbone.out_indices),
                                pad_small_map=backbone.pad_small_map)
        model.eval()
        return model
    arch = {k: backbone.arch_settings[k] for k in
            ('embed_dims', 'num_layers', 'num_heads', 'feedforward_channels')}
    model = VisionTransformer(arch=arch, img_size=backbone.img_size,
                              patch_size=backbone.patch_size,
                              out_type='cls_token', final_norm=backbone.final_norm)
    model.eval()  # mmpretrain's train() returns None, so no chaining
    return model


def dense_flops(backbone, inputs):
    """(B,) multiply-adds per sample of the dense ViT of ``backbone``'s arch
    (what :func:`dense_baseline` computes), counted by a plain
    :class:`DyTVisionTransformer` twin on ``inputs``."""
    from ..models.backbones import DyTVisionTransformer
    twin = DyTVisionTransformer(arch=dict(backbone.arch_settings), img_size=backbone.img_size,
                                patch_size=backbone.patch_size, dispatch=None, adapter_dim=None,
                                final_norm=backbone.final_norm).to(inputs.device).eval()
    record = ForwardRecord()
    with torch.no_grad():
        twin(inputs.float(), record=record)
    return twin.flops(record)


class DynamicInference(nn.Module):
    """An early-exit model's dynamic inference at its ``thresholds`` (units
    leave the batch at their exit) as a forward to time: inputs -> (U, K)
    scores."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return self.model.dynamic_inference(inputs)[0]


def timed_form(model):
    """What inference runs: :class:`DynamicInference` for an early-exit
    model, the model itself otherwise."""
    return DynamicInference(model) if isinstance(model, EarlyExitMixin) else model


def compare_speed(models, baseline, inputs, repeats=5, warmup=1, iters=1):
    """Several models and a baseline timed side by side by
    :func:`time_interleaved` (same input, same process, order rotating).

    Args:
        models (dict[str, nn.Module]): name -> model in eval mode; an
            early-exit model is timed in its dynamic inference
            (:func:`timed_form`).
        baseline (nn.Module): the dense model the ratios refer to.
        inputs (Tensor): (B, ...) the batch.
        repeats, warmup, iters (int): as :func:`time_interleaved`.

    Returns:
        dict[str, dict]: ``'baseline'`` and each name -> ``throughput``
        (samples / s of the median repeat), ``spread`` (of the repeats),
        ``ratio`` (median over repeats of baseline time / model time, > 1 =
        faster), ``ratio_min``, ``ratio_max``.
    """
    if 'baseline' in models:
        raise ValueError("compare_speed: 'baseline' names the baseline, rename that model")
    timed = {name: timed_form(model) for name, model in models.items()}
    times = time_interleaved(dict(baseline=baseline, **timed), inputs, repeats, warmup, iters)
    rows = {}
    for name, seconds in times.items():
        ratios = [b / m for b, m in zip(times['baseline'], seconds)]
        stats = summarize(seconds)
        rows[name] = dict(throughput=inputs.shape[0] / stats['median'], spread=stats['spread'],
                          ratio=statistics.median(ratios), ratio_min=min(ratios),
                          ratio_max=max(ratios))
    return rows


def input_shape(shape, backbone, cfg=None):
    """One sample of the model's input: ``shape`` (e.g. a tool's
    ``--shape``) when given, else (3, H, W) at the ``backbone``'s
    ``img_size``; for a recognizer (1, 3, T, H, W): one clip of the config's
    ``clip_len`` frames (8 if the test pipeline does not say)."""
    if shape:
        return tuple(shape)
    if backbone is None:
        raise ValueError('no DyT backbone to read the input size from: give the shape')
    if isinstance(backbone, FrameDyTVisionTransformer):
        pipeline = (cfg or {}).get('test_pipeline') or []
        clip_len = next((step['clip_len'] for step in pipeline if 'clip_len' in step), 8)
        return (1, 3, clip_len) + tuple(backbone.img_size)
    return (3, ) + tuple(backbone.img_size)


def backbone_inputs(backbone, inputs):
    """The backbone's part of a model input: recognizer inputs (N, crops,
    C, T, H, W) fold their crops into the batch, as mmaction does."""
    if isinstance(backbone, FrameDyTVisionTransformer):
        return inputs.flatten(0, 1)
    return inputs


@torch.no_grad()
def force_activation_rate(backbone, rate, inputs):
    """Set every dispatcher's gate bias so that a fraction ``rate`` of the
    patch tokens of ``inputs`` is active in every layer.

    Deterministic: one forward in which each gate, before it decides, moves
    its bias by the (1 - rate)-quantile of its logits on this very input (the
    median for 0.5). ``rate=1`` (``0``) makes every bias +1e4 (-1e4).

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


def summarize(times):
    """Seconds of the repeats -> dict(median, min, max, spread), spread being
    (max - min) / median."""
    median = statistics.median(times)
    return dict(median=median, min=min(times), max=max(times),
                spread=(max(times) - min(times)) / median)


def _sync(device):
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


@torch.inference_mode()
def time_interleaved(models, inputs, repeats=5, warmup=1, iters=1):
    """Time the forwards of several models on the same input, interleaved.

    Each repeat runs every model ``iters`` times in turn, the order rotating
    from repeat to repeat, so load changes on a shared machine hit all
    models alike.

    Args:
        models (dict[str, nn.Module]): name -> model in eval mode.
        inputs (Tensor): the batch.
        repeats, warmup, iters (int): timed repeats, untimed runs per model,
            forwards per timed repeat.

    Returns:
        dict[str, list[float]]: name -> seconds per forward, one per repeat.
    """
    names = list(models)
    for name in names:
        for _ in range(warmup):
            tensor_forward(models[name], inputs)
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            _sync(inputs.device)
            start = time.perf_counter()
            for _ in range(iters):
                tensor_forward(models[name], inputs)
            _sync(inputs.device)
            times[name].append((time.perf_counter() - start) / iters)
    return times


def linear_kernel_times(embed_dims, hidden_dims, token_counts, repeats=10, warmup=2,
                        min_multiply_adds=MIN_MULTIPLY_ADDS):
    """aten's ``F.linear`` against oneDNN's inner product on the four linear
    layers of a ViT block (qkv, proj, fc1 + GELU, fc2), random float32
    weights: one :class:`~mmdyt.deploy.OneDNNLinear` with oneDNN off and
    on, interleaved by :func:`time_interleaved`.

    Args:
        embed_dims (int): C.
        hidden_dims (int): MLP width.
        token_counts (list[int]): rows of the (tokens, C_in) input to time.
        min_multiply_adds (int): the threshold of
            :func:`~mmdyt.deploy.fuse_for_cpu` for the ``fused`` column.

    Returns:
        list[dict]: per layer and token count: ``layer``, ``tokens``, median
        seconds ``aten`` and ``onednn``, ``ratio`` = aten / onednn, and
        ``fused`` = the kernel a layer after ``fuse_for_cpu`` picks for it.

    Raises:
        RuntimeError: oneDNN's float32 inner product does not work here.
    """
    reason = probe_onednn(torch.float32)
    if reason is not None:
        raise RuntimeError(f'cannot time oneDNN here: {reason}')
    layers = {'qkv': (embed_dims, 3 * embed_dims, False),
              'proj': (embed_dims, embed_dims, False),
              'fc1+gelu': (embed_dims, hidden_dims, True),
              'fc2': (hidden_dims, embed_dims, False)}
    rows = []
    for name, (in_features, out_features, gelu) in layers.items():
        layer = nn.Linear(in_features, out_features)
        models = dict(aten=OneDNNLinear(layer, gelu, dtypes=()),
                      onednn=OneDNNLinear(layer, gelu, min_multiply_adds=0))
        fused = OneDNNLinear(layer, gelu, min_multiply_adds=min_multiply_adds)
        for tokens in token_counts:
            x = torch.randn(tokens, in_features)
            times = time_interleaved(models, x, repeats, warmup)
            row = dict(layer=name, tokens=tokens,
                       **{k: statistics.median(v) for k, v in times.items()})
            with torch.no_grad():
                kernel = 'oneDNN' if fused.uses_onednn(x) else 'aten'
            rows.append(dict(row, ratio=row['aten'] / row['onednn'], fused=kernel))
    return rows


def _rss_bytes():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _reset_peak_rss():
    """Reset the process's peak resident size to the current one (Linux >=
    4.0, ``/proc/self/clear_refs``); False where that is not possible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _peak_rss_bytes():
    """Peak resident size: ``VmHWM`` where /proc has it, else ``ru_maxrss``."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def training_step_cost(model, inputs, steps=3, warmup=1):
    """Seconds per training step and peak memory of ``model`` (run this in a
    fresh process per model: the peak is a process high-water mark).

    A step is forward (train mode, masked path), a surrogate loss (mean
    square of the outputs plus the mean of the dispatchers' masks, so the
    gates get gradients as with the rate loss), backward and an AdamW step on
    the trainable parameters. Peak memory: on CUDA
    ``torch.cuda.max_memory_allocated``; on CPU the peak resident set size
    during the steps (the high-water mark is reset before the first step
    where Linux allows it; otherwise it is the process's, hence a fresh
    process per model) minus the resident size before the first step, i.e.
    what the steps add on top of the model and its input: activations,
    gradients and optimizer states.

    Returns:
        dict: ``times`` (seconds per step, one per timed step) and
        ``peak_bytes``.
    """
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    backbone = find_dyt_backbone(model)
    cuda = inputs.device.type == 'cuda'
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        start_bytes = torch.cuda.memory_allocated()
    else:
        _reset_peak_rss()
        start_bytes = _rss_bytes()
    times = []
    for step in range(warmup + steps):
        _sync(inputs.device)
        start = time.perf_counter()
        with contextlib.ExitStack() as stack:
            records = (stack.enter_context(record_forwards(backbone))
                       if backbone is not None else [])
            outs = tensor_forward(model, inputs)
        outs = outs if isinstance(outs, (tuple, list)) else [outs]
        loss = sum(o.float().pow(2).mean() for o in outs)
        for record in records:
            for mask in record.masks():
                if mask.requires_grad:
                    loss = loss + mask[:, record.num_fixed_tokens:].mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(inputs.device)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    if cuda:
        peak = torch.cuda.max_memory_allocated() - start_bytes
    else:
        peak = _peak_rss_bytes() - start_bytes
    return dict(times=times, peak_bytes=peak)
