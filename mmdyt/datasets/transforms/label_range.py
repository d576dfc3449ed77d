"""Label-map checks for the segmentation pipelines."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckLabelRange(BaseTransform):
    """Reject label maps with values outside ``[0, num_classes)`` other than
    ``ignore_index``, naming the annotation file.

    Place it right after ``LoadAnnotations``: it checks ``gt_seg_map`` after
    ``reduce_zero_label`` and the dataset's ``label_map``, and reports the
    offending values as stored in the file.

    Args:
        num_classes (int): number of classes of the dataset.
        ignore_index (int): label ignored by the loss and the metric.
    """

    def __init__(self, num_classes, ignore_index=255):
        if num_classes <= 0:
            raise ValueError(f'num_classes must be > 0, got {num_classes}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results):
        seg_map = results['gt_seg_map']
        values = np.unique(seg_map)
        bad = values[((values < 0) | (values >= self.num_classes)) &
                     (values != self.ignore_index)]
        if bad.size:
            from_file = results.get('reduce_zero_label') and results.get('label_map') is None
            where = 'as stored in the file' if from_file else 'after LoadAnnotations'
            if from_file:
                bad = bad.astype(np.int64) + 1  # undo the shift of reduce_zero_label
            raise ValueError(
                f'{results.get("seg_map_path", "<label map>")}: label values {bad.tolist()} '
                f'({where}) are outside [0, {self.num_classes}) and are not the ignore '
                f'index {self.ignore_index}')
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
