"""Top-k accuracy on the logits of a dataset's classes only (ImageNet-A and
-R hold 200 of the 1000 ImageNet classes)."""
import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS


@METRICS.register_module()
class SubsetAccuracy(BaseMetric):
    """Top-k accuracy (%) of predictions over ImageNet-1k (or any label
    space) restricted to the classes the test set holds.

    The classes are the dataset's ``class_indices`` metainfo (set by
    :class:`mmdyt.datasets.ImageNetVariant`); the scores of the other
    classes are left out before ranking, so a prediction is one of the
    set's classes. Without ``class_indices`` every class counts (plain top-k
    accuracy).

    Args:
        topk (int | Sequence[int]): k values, reported as ``top{k}``.
    """
    default_prefix = 'accuracy'

    def __init__(self, topk=(1, ), collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = (topk, ) if isinstance(topk, int) else tuple(topk)

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            if 'pred_score' not in sample:
                raise KeyError('SubsetAccuracy needs predictions with pred_score')
            self.results.append((sample['pred_score'].cpu(), int(sample['gt_label'][0])))

    def compute_metrics(self, results):
        scores = torch.stack([r[0] for r in results])
        labels = torch.tensor([r[1] for r in results])
        indices = (self.dataset_meta or {}).get('class_indices')
        indices = torch.arange(scores.shape[1]) if indices is None else torch.tensor(indices)
        if labels.max() >= scores.shape[1] or not torch.isin(labels, indices).all():
            raise ValueError('SubsetAccuracy: a label is outside the scored classes '
                             f'(labels {sorted(set(labels.tolist()))[:10]}...)')
        ranked = indices[scores[:, indices].argsort(1, descending=True)]
        return {f'top{k}': 100 * (ranked[:, :k] == labels[:, None]).any(1).double().mean().item()
                for k in self.topk}
