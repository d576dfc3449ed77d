"""The runtimes ``benchmark.py`` times a model and its baseline in, on equal
terms: PyTorch eager, ``torch.compile`` (:class:`~.compile.CompiledModel`)
or the exported graphs in ONNX Runtime (same session options for both)."""
import os.path as osp

import torch

RUNTIMES = ('pytorch', 'onnxruntime')


class InferenceRuntime:
    """Models prepared for timing in one runtime.

    Args:
        models (dict[str, nn.Module]): name -> model in eval mode (tensor
            forward of a classifier / segmentor, or a backbone).
        runtime (str): 'pytorch' or 'onnxruntime'.
        compile (bool): ``torch.compile`` each model (PyTorch only).
        shape (tuple): one preprocessed sample, for the ONNX export.
        threads (int | None): ONNX Runtime intra-op threads.
        directory (str | None): where the ``.onnx`` files go (ONNX Runtime).

    Attributes:
        lines (list[str]): what was prepared, to print (export reports,
            graph breaks).
    """

    def __init__(self, models, runtime='pytorch', compile=False, shape=None, threads=None,
                 directory=None):
        if runtime not in RUNTIMES:
            raise ValueError(f'runtime must be one of {RUNTIMES}, got {runtime!r}')
        if runtime == 'onnxruntime' and (compile or directory is None or shape is None):
            raise ValueError('onnxruntime needs shape and directory, and no compile')
        self.models, self.runtime, self.compile, self.threads = models, runtime, compile, threads
        self.lines = []
        if runtime == 'onnxruntime':
            import onnx

            from .onnx import export_onnx
            self.graphs = {}
            for name, model in models.items():
                example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
                report = export_onnx(model, osp.join(directory, f'{name}.onnx'), example)
                self.graphs[name] = onnx.load(report.path)
                self.lines.append(f'{name}: {report}')
            self.lines.append(f'runtime: ONNX Runtime (CPU, {threads} intra-op threads, one '
                              'inter-op thread, sequential, all graph optimizations) for '
                              'both models')
        elif compile:
            from .compile import CompiledModel
            self.compiled = {name: CompiledModel(model) for name, model in models.items()}
            self.lines.append('runtime: torch.compile (default mode, data-dependent shapes '
                              'captured) for both models')
        else:
            self.lines.append('runtime: PyTorch eager for both models')

    def graph_breaks(self, inputs):
        """Lines with ``torch._dynamo.explain``'s graph and break counts of
        every model on ``inputs``, as compiled (and with dynamo's defaults)."""
        from .compile import graph_breaks
        lines = []
        for name, model in self.models.items():
            ours, default = graph_breaks(model, inputs), graph_breaks(model, inputs, False)
            lines.append(f'{name}: torch._dynamo.explain {ours["graphs"]} graph(s), '
                         f'{ours["breaks"]} graph breaks as compiled ({default["breaks"]} '
                         'with dynamo defaults)')
        return lines

    def timed(self):
        """name -> the module to time, for the models' current weights (the
        gate biases a forced activation rate set go into the ONNX graphs)."""
        if self.runtime == 'onnxruntime':
            from .onnx import OnnxRuntimeModel, with_gate_biases
            return {name: OnnxRuntimeModel(with_gate_biases(self.graphs[name], model),
                                           self.threads)
                    for name, model in self.models.items()}
        return self.compiled if self.compile else dict(self.models)
