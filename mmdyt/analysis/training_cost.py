"""Seconds per training step and peak memory of a model."""
import contextlib
import time

import torch

from ..models.record import record_forwards
from ..models.task_model import find_dyt_backbone, tensor_forward
from .memory import peak_rss_bytes, reset_peak_rss, rss_bytes
from .timing import synchronize


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
        reset_peak_rss()
        start_bytes = rss_bytes()
    times = []
    for step in range(warmup + steps):
        synchronize(inputs.device)
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
        synchronize(inputs.device)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    if cuda:
        peak = torch.cuda.max_memory_allocated() - start_bytes
    else:
        peak = peak_rss_bytes() - start_bytes
    return dict(times=times, peak_bytes=peak)
