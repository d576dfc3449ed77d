"""Bad annotation lists and images (:mod:`mmdyt.datasets.base`), end to end
through ``tools/train.py``: each error names the file and the line."""
from pathlib import Path

import pytest

from mmdyt.datasets import read_annotation_list
import train_runs


@pytest.fixture
def task(tmp_path):
    return Path(train_runs.write_task(tmp_path / 'data', num_train=8))


def test_empty_split_names_the_file(tmp_path, task):
    (task / 'train800val200.txt').write_text('# no images yet\n\n')
    with pytest.raises(ValueError, match=rf'{task}/train800val200.txt: empty split'):
        train_runs.train_on_task(tmp_path, task)


def test_label_out_of_range_names_file_and_line(tmp_path, task):
    split = task / 'train800val200.txt'
    lines = split.read_text().splitlines()
    lines[2] = lines[2].rsplit(maxsplit=1)[0] + ' 7'
    split.write_text('\n'.join(lines) + '\n')
    with pytest.raises(ValueError, match=rf'{split}:3: label 7 outside \[0, 4\)'):
        train_runs.train_on_task(tmp_path, task)


@pytest.mark.parametrize('content, problem', [
    (b'not a jpeg at all', r"cannot be decoded as an image \(17 bytes, starting b'not a jp'\)"),
    (b'', r'is empty \(0 bytes\)'),
])
def test_undecodable_or_empty_image_names_file_and_line(tmp_path, task, content, problem):
    image = task / 'images' / 'train800val200' / '5.jpg'
    image.write_bytes(content)
    split = task / 'train800val200.txt'
    line = next(i for i, text in enumerate(split.read_text().splitlines(), 1)
                if text.startswith('images/train800val200/5.jpg'))
    with pytest.raises(ValueError, match=rf'{split}:{line}: image {image} {problem}'):
        train_runs.train_on_task(tmp_path, task, 'train_dataloader.sampler.shuffle=False')


def test_annotation_list_with_a_byte_order_mark_trains(tmp_path, task):
    """A UTF-8 byte-order mark (Windows editors) is not part of the first
    path: the list reads as without it, and training runs."""
    split = task / 'train800val200.txt'
    without_bom = read_annotation_list(str(split), 4)
    split.write_bytes(b'\xef\xbb\xbf' + split.read_bytes())
    assert read_annotation_list(str(split), 4) == without_bom
    assert without_bom[0][0] == 'images/train800val200/0.jpg'
    train_runs.train_on_task(tmp_path, task, 'train_cfg.max_iters=1')
    assert list(train_runs.read_losses(tmp_path / 'work')) == [1]


def test_non_utf8_annotation_names_file_and_line(tmp_path, task):
    split = task / 'train800val200.txt'
    lines = split.read_bytes().splitlines()
    lines[3] = lines[3].replace(b'images', b'im\xe4ges', 1)
    split.write_bytes(b'\n'.join(lines) + b'\n')
    with pytest.raises(ValueError, match=rf'{split}:4: not UTF-8 text \(byte 0xe4 at column 3\)'):
        train_runs.train_on_task(tmp_path, task)


@pytest.mark.parametrize('endings', [['\n'], ['\r\n'], ['\r'], ['\r', '\r\n', '\n']],
                         ids=['LF', 'CRLF', 'CR', 'mixed'])
@pytest.mark.parametrize('bom', [b'', b'\xef\xbb\xbf'], ids=['', 'BOM'])
@pytest.mark.parametrize('final', [True, False], ids=['', 'no-final-newline'])
def test_annotation_list_reads_with_any_line_endings(task, endings, bom, final):
    """Old Mac (CR), Windows (CR LF), Unix (LF) and mixed line endings give
    the same entries and line numbers; a bad label is named at its line."""
    split = task / 'train800val200.txt'
    expected = read_annotation_list(str(split), 4)
    lines = ['# a comment'] + split.read_text().splitlines()

    def write(lines):
        text = ''.join(line + endings[i % len(endings)] for i, line in enumerate(lines))
        split.write_bytes(bom + (text if final else text.rstrip('\r\n')).encode())

    write(lines)
    assert read_annotation_list(str(split), 4) == [(rel, label, lineno + 1)
                                                   for rel, label, lineno in expected]
    lines[3] = lines[3].rsplit(maxsplit=1)[0] + ' 9'
    write(lines)
    with pytest.raises(ValueError, match=rf'{split}:4: label 9 outside \[0, 4\)'):
        read_annotation_list(str(split), 4)
