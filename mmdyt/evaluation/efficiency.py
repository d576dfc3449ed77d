"""Efficiency metric: activation rates and FLOPs actually computed."""
import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS

#: The mmdyt model that attaches ``dyt_flops``, by the toolbox's data sample.
MODEL_BY_SAMPLE = {
    'DataSample': ('ImageClassifier', 'DyTImageClassifier'),  # mmpretrain
    'ClsDataSample': ('ImageClassifier', 'DyTImageClassifier'),
    'SegDataSample': ('EncoderDecoder', 'DyTEncoderDecoder'),
    'ActionDataSample': ('Recognizer3D', 'DyTRecognizer3D'),
}


def missing_flops_message(sample):
    """Why a prediction without ``dyt_flops`` cannot be measured, naming the
    mmdyt model class to use for the task of ``sample``."""
    kind = type(sample).__name__
    if kind in MODEL_BY_SAMPLE:
        plain, dyt = MODEL_BY_SAMPLE[kind]
        use = (f'model.type={dyt!r} (not the toolbox\'s {plain!r}: only mmdyt\'s task '
               f'models attach it)')
    else:
        use = ("model.type='DyTImageClassifier' (classification), 'DyTEncoderDecoder' "
               "(segmentation) or 'DyTRecognizer3D' (video)")
    return (f'EfficiencyMetric: the prediction ({kind}) has no dyt_flops, which an mmdyt '
            f'task model sets; use {use}, or drop EfficiencyMetric from the evaluator')


@METRICS.register_module()
class EfficiencyMetric(BaseMetric):
    """Mean GFLOPs per sample and activation rates over the test set, and in
    capacity mode ``capacity_overflow``: the mean active tokens per sample
    that capacity mode left out (summed over the dispatchers).

    Reads ``dyt_flops``, ``dyt_rates`` and ``dyt_overflow`` from each
    prediction's metainfo (set by the task glue through
    :func:`mmdyt.models.task_mixin.attach_efficiency`). Use it beside the
    task metric, e.g.
    ``val_evaluator = [dict(type='Accuracy', topk=1), dict(type='EfficiencyMetric')]``.

    Args:
        extra_flops (float): multiply-adds per sample outside the backbone
            (e.g. the classifier head), added to the mean.
    """
    default_prefix = 'efficiency'

    def __init__(self, extra_flops=0.0, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.extra_flops = extra_flops

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            meta = sample if isinstance(sample, dict) else sample.metainfo
            if 'dyt_flops' not in meta:
                raise ValueError(missing_flops_message(sample))
            rates = meta.get('dyt_rates')
            self.results.append((meta['dyt_flops'], None if rates is None else
                                 torch.as_tensor(rates).float(), meta.get('dyt_overflow')))

    def compute_metrics(self, results):
        flops = torch.tensor([r[0] for r in results], dtype=torch.float64)
        metrics = {'gflops': (flops.mean().item() + self.extra_flops) / 1e9}
        rates = [r[1] for r in results if r[1] is not None]
        if rates:
            per_layer = torch.stack(rates).mean(0)
            metrics['activation_rate'] = per_layer.mean().item()
            metrics.update({f'rate_layer{i}': v.item() for i, v in enumerate(per_layer)})
        overflow = [r[2] for r in results if r[2] is not None]
        if overflow:
            metrics['capacity_overflow'] = sum(overflow) / len(overflow)
        return metrics
