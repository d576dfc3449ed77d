"""aten's ``F.linear`` against oneDNN's inner product on the linear layers
of a ViT block."""
import statistics

import torch
import torch.nn as nn

from ..deploy import MIN_MULTIPLY_ADDS, OneDNNLinear, probe_onednn
from .timing import time_interleaved


def linear_kernel_times(embed_dims, hidden_dims, token_counts, repeats=10, warmup=2,
                        min_multiply_adds=MIN_MULTIPLY_ADDS):
    """aten's ``F.linear`` against oneDNN's inner product on the four linear
    layers of a ViT block (qkv, proj, fc1 + GELU, fc2), random float32
    weights: one :class:`~mmdyt.deploy.OneDNNLinear` with oneDNN off and
    on, interleaved by :func:`~mmdyt.analysis.time_interleaved`.

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
