"""Bad input that :mod:`mmdyt.engine` catches, end to end through
``tools/train.py``: a checkpoint to resume that is missing or truncated
(``work_dir.py``), a label beyond the classifier head (``LabelRangeHook``,
``hooks/label_range.py``).

These belong in ``tests/engine/`` (``test_work_dir.py``, a test of the
label-range hook); they wait here while that directory is being edited."""
import io
from pathlib import Path

import pytest
import torch

import train_runs
from tiny_dyt import tiny_vit


@pytest.fixture
def task(tmp_path):
    return Path(train_runs.write_task(tmp_path / 'data', num_train=8))


def test_label_beyond_the_head_names_label_line_and_num_classes(tmp_path, task):
    split = task / 'train800val200.txt'
    line = next(i for i, text in enumerate(split.read_text().splitlines(), 1)
                if text.endswith(' 3'))
    with pytest.raises(ValueError, match=rf'{split}:{line}: label 3 does not fit the model\'s '
                       r'head with num_classes=3 \(labels must be in \[0, 3\)\)'):
        train_runs.train_on_task(tmp_path, task, 'model.head.num_classes=3')


def test_truncated_checkpoint_to_resume_is_named(tmp_path, task):
    buffer = io.BytesIO()
    torch.save(tiny_vit(num_layers=2).state_dict(), buffer)
    whole = buffer.getvalue()
    path = tmp_path / 'truncated.pth'
    path.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match=rf'cannot read checkpoint {path}: the file is truncated'):
        train_runs.train_on_task(tmp_path, task, extra_args=['--resume', path])


def test_missing_checkpoint_to_resume_is_named(tmp_path, task):
    path = tmp_path / 'iter_9.pth'
    with pytest.raises(FileNotFoundError, match=rf'checkpoint {path} does not exist'):
        train_runs.train_on_task(tmp_path, task, extra_args=['--resume', path])
