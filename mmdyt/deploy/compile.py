"""``torch.compile`` of a DyT model's inference without graph breaks.

The skipping path selects tokens with ``nonzero`` and reads the largest
per-sample count with ``.item()``; by default dynamo breaks the graph at both
(three breaks per dispatched block). With dynamo's
``capture_dynamic_output_shape_ops`` and ``capture_scalar_outputs`` these
become data-dependent sizes inside one graph. :class:`CompiledModel`
compiles with both set (for its own compilations only), :func:`graph_breaks`
reports what ``torch._dynamo.explain`` finds.
"""
import numpy as np
import torch
import torch.nn as nn

from ..models.task_model import TensorForward

#: The dynamo settings under which the skipping path is one graph.
CAPTURE_DATA_DEPENDENT = dict(capture_dynamic_output_shape_ops=True,
                              capture_scalar_outputs=True)


def python_scalars(model):
    """Turn numpy scalar attributes of ``model``'s modules (mmcv's
    ``DropPath.drop_prob``, from ``np.linspace`` in mmpretrain's ViT) into
    Python numbers: dynamo breaks the graph at each and its guard on them
    fails (torch 2.12)."""
    for module in model.modules():
        for name, value in vars(module).items():
            if isinstance(value, np.generic):
                setattr(module, name, value.item())


class CompiledModel(nn.Module):
    """``torch.compile`` of ``model``'s tensor forward, traced (and retraced)
    with :data:`CAPTURE_DATA_DEPENDENT`.

    Args:
        model (nn.Module): a classifier / segmentor or a backbone, eval mode.
        **compile_kwargs: passed to ``torch.compile`` (e.g. ``mode``).

    Shapes:
        inputs: the preprocessed batch -> the model's tensor output.
    """

    def __init__(self, model, **compile_kwargs):
        super().__init__()
        python_scalars(model)
        self.model = model
        self.compiled = torch.compile(TensorForward(model), **compile_kwargs)

    def forward(self, inputs):
        with torch._dynamo.config.patch(**CAPTURE_DATA_DEPENDENT):
            return self.compiled(inputs)


@torch.no_grad()
def graph_breaks(model, inputs, capture=True):
    """``torch._dynamo.explain`` of ``model``'s tensor forward on ``inputs``.

    Args:
        capture (bool): with :data:`CAPTURE_DATA_DEPENDENT` (as
            :class:`CompiledModel` compiles) or dynamo's defaults.

    Returns:
        dict: ``graphs`` (int), ``breaks`` (int) and ``reasons`` (list[str],
        the first line of each break reason).
    """
    settings = CAPTURE_DATA_DEPENDENT if capture else {
        key: False for key in CAPTURE_DATA_DEPENDENT}
    python_scalars(model)
    torch._dynamo.reset()
    with torch._dynamo.config.patch(**settings):
        explanation = torch._dynamo.explain(TensorForward(model))(inputs)
    torch._dynamo.reset()
    return dict(graphs=explanation.graph_count, breaks=explanation.graph_break_count,
                reasons=[str(b.reason).splitlines()[0] for b in explanation.break_reasons])
