"""Interleaved timing of models on the same input (also of several models
side by side against a baseline), and what inference runs for an early-exit
model."""
import statistics
import time

import torch
import torch.nn as nn

from ..models.early_exit import EarlyExitMixin
from ..models.task_model import tensor_forward


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


def summarize(times):
    """Seconds of the repeats -> dict(median, min, max, spread), spread being
    (max - min) / median."""
    median = statistics.median(times)
    return dict(median=median, min=min(times), max=max(times),
                spread=(max(times) - min(times)) / median)


def synchronize(device):
    """Wait for the queued CUDA work when ``device`` is a CUDA device."""
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
            synchronize(inputs.device)
            start = time.perf_counter()
            for _ in range(iters):
                tensor_forward(models[name], inputs)
            synchronize(inputs.device)
            times[name].append((time.perf_counter() - start) / iters)
    return times


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
