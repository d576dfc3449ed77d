"""LabelRangeHook (mmdyt/engine/hooks/label_range.py): a label beyond the
classifier head fails before the first batch, naming it."""
from pathlib import Path

import pytest

from mmdyt.engine.hooks.label_range import check_labels_fit
import train_runs


class Samples:
    """A dataset of data infos."""

    def __init__(self, *infos):
        self.infos = infos

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, index):
        return self.infos[index]


def test_label_beyond_the_head_names_label_line_and_num_classes(tmp_path):
    task = Path(train_runs.write_task(tmp_path / 'data', num_train=8))
    split = task / 'train800val200.txt'
    line = next(i for i, text in enumerate(split.read_text().splitlines(), 1)
                if text.endswith(' 3'))
    with pytest.raises(ValueError, match=rf'{split}:{line}: label 3 does not fit the model\'s '
                       r'head with num_classes=3 \(labels must be in \[0, 3\)\)'):
        train_runs.train_on_task(tmp_path, task, 'model.head.num_classes=3')


def test_label_without_a_source_is_named_by_sample_and_path():
    dataset = Samples(dict(gt_label=1, img_path='a.png'), dict(label=2, img_path='b.png'))
    check_labels_fit(dataset, 3)
    with pytest.raises(ValueError, match=r'Samples sample 1 \(b\.png\): label 2 does not fit'):
        check_labels_fit(dataset, 2)
