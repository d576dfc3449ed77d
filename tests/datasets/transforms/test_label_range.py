"""CheckLabelRange: out-of-range label maps are reported with their file."""
import numpy as np
import pytest

from mmdyt.datasets.transforms import CheckLabelRange


def results(seg_map, reduce_zero_label=False, path='ann/a.png', label_map=None):
    return dict(gt_seg_map=np.asarray(seg_map, dtype=np.uint8), seg_map_path=path,
                reduce_zero_label=reduce_zero_label, label_map=label_map)


def test_valid_map_with_ignore_index_passes():
    out = CheckLabelRange(num_classes=3)(results([[0, 1, 2, 255]]))
    assert out['gt_seg_map'].tolist() == [[0, 1, 2, 255]]


def test_out_of_range_values_name_the_file():
    with pytest.raises(ValueError, match=r'ann/a\.png: label values \[3, 7\] \(after '
                                         r'LoadAnnotations\) are outside \[0, 3\)'):
        CheckLabelRange(num_classes=3)(results([[0, 3, 7, 255]]))


def test_reduce_zero_label_reports_file_values():
    # the file held 0..4 and 255; LoadAnnotations turned them into 255, 0..3, 255
    seg = [[255, 0, 1, 2, 3, 255]]
    with pytest.raises(ValueError, match=r'label values \[4\] \(as stored in the file\)'):
        CheckLabelRange(num_classes=3)(results(seg, reduce_zero_label=True))


def test_custom_ignore_index():
    with pytest.raises(ValueError, match=r'\[255\].*ignore index 0'):
        CheckLabelRange(num_classes=3, ignore_index=0)(results([[1, 255]]))


def test_bad_num_classes():
    with pytest.raises(ValueError, match='num_classes'):
        CheckLabelRange(num_classes=0)
