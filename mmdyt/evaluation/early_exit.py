"""Metric of Dyn-Adapter's dynamic inference."""
import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS


@METRICS.register_module()
class EarlyExitMetric(BaseMetric):
    """Top-1 accuracy, mean GFLOPs and the exit histogram of dynamic inference.

    Reads ``pred_label``, ``gt_label`` and the ``exit_index``, ``num_exits``
    and ``dyt_flops`` metainfo of :class:`EarlyExitClassifier` predictions.
    Reports ``accuracy`` (%), ``gflops``, and per exit j ``exit{j}_ratio``
    (fraction of samples leaving there) and ``exit{j}_accuracy`` (%, of those
    samples; absent when none left there).
    """
    default_prefix = 'early_exit'

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            if 'exit_index' not in sample:
                raise KeyError('EarlyExitMetric needs predictions from EarlyExitClassifier '
                               '(no exit_index in the data sample)')
            self.results.append((int(sample['pred_label'][0]), int(sample['gt_label'][0]),
                                 sample['exit_index'], sample['num_exits'],
                                 sample['dyt_flops']))

    def compute_metrics(self, results):
        pred, gt, exits, num_exits, flops = (torch.tensor(c, dtype=torch.float64)
                                             for c in zip(*results))
        correct = (pred == gt).double()
        metrics = dict(accuracy=100 * correct.mean().item(),
                       gflops=flops.mean().item() / 1e9)
        for j in range(int(num_exits.max())):
            here = exits == j
            metrics[f'exit{j}_ratio'] = here.double().mean().item()
            if here.any():
                metrics[f'exit{j}_accuracy'] = 100 * correct[here].mean().item()
        return metrics
