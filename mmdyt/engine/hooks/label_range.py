"""Labels against the classifier head's ``num_classes``, before the first
batch."""
import numbers

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

#: Where the toolboxes keep a sample's class label in its data info.
LABEL_KEYS = ('gt_label', 'label')


def head_num_classes(model):
    """``num_classes`` of the classification head (mmpretrain ``head``,
    mmaction ``cls_head``), or None (no such head, e.g. a segmentor)."""
    for name in ('head', 'cls_head'):
        num_classes = getattr(getattr(model, name, None), 'num_classes', None)
        if isinstance(num_classes, int):
            return num_classes
    return None


def check_labels_fit(dataset, num_classes):
    """Raise ``ValueError`` on the first sample of ``dataset`` whose integer
    label is outside ``[0, num_classes)``, naming the label, its
    ``file:line`` (``source``) or sample index and path, and ``num_classes``;
    a CrossEntropy loss would fail with an unnamed ``IndexError``."""
    if hasattr(dataset, 'full_init'):
        dataset.full_init()
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        label = next((info[key] for key in LABEL_KEYS if key in info), None)
        if label is None or not isinstance(label, numbers.Integral) or 0 <= label < num_classes:
            continue
        where = info.get('source') or (f'{type(dataset).__name__} sample {index}'
                                       f' ({info.get("img_path") or info.get("filename")})')
        raise ValueError(f'{where}: label {int(label)} does not fit the model\'s head with '
                         f'num_classes={num_classes} (labels must be in [0, {num_classes})): '
                         'set the head\'s num_classes to the number of classes of the data')


@HOOKS.register_module()
class LabelRangeHook(Hook):
    """Check the labels of the training, validation and test sets against
    the head's ``num_classes`` (:func:`check_labels_fit`) when each loop
    starts. ``tools/train.py`` and ``tools/test.py`` register it; it does
    nothing for models without a classification head."""
    priority = 'VERY_HIGH'

    def _check(self, runner, dataloader):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        num_classes = head_num_classes(model)
        dataset = getattr(dataloader, 'dataset', None)
        if num_classes is not None and dataset is not None:
            check_labels_fit(dataset, num_classes)

    def before_train(self, runner):
        self._check(runner, runner.train_dataloader)

    def before_val(self, runner):
        self._check(runner, runner.val_dataloader)

    def before_test(self, runner):
        self._check(runner, runner.test_dataloader)
