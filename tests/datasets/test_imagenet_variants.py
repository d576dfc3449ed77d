"""ImageNet-V2 / -Sketch / -A / -R folder releases and the accuracy on the
logits of their classes (Dyn-Adapter Table 6)."""
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmpretrain.structures import DataSample

from mmdyt.datasets import ImageNetVariant
from dataset_writers import write_jpeg

SYNSETS = [f'n{index:08d}' for index in range(1000)]


@pytest.fixture
def synset_file(tmp_path):
    path = tmp_path / 'LOC_synset_mapping.txt'
    path.write_text(''.join(f'{s} class {i}, a name\n' for i, s in enumerate(SYNSETS)))
    return str(path)


def write_release(root, folders, per_class=2):
    for folder in folders:
        for j in range(per_class):
            write_jpeg(str(root / folder / f'{j}.jpg'), value=j)


def test_v2_folders_are_class_indices(tmp_path):
    write_release(tmp_path / 'v2', ['0', '7', '999'])
    dataset = ImageNetVariant(str(tmp_path / 'v2'), 'v2', pipeline=[])
    assert len(dataset) == 6
    assert [dataset[i]['gt_label'] for i in range(6)] == [0, 0, 7, 7, 999, 999]
    assert dataset.metainfo['class_indices'] == [0, 7, 999]
    (tmp_path / 'v2' / 'cat').mkdir()
    with pytest.raises(ValueError, match='cat: ImageNet-V2 class folders are the class indices'):
        ImageNetVariant(str(tmp_path / 'v2'), 'v2')


@pytest.mark.parametrize('variant', ['sketch', 'a', 'r'])
def test_wnid_folders_map_to_imagenet_indices(tmp_path, synset_file, variant):
    root = tmp_path / variant
    write_release(root, [SYNSETS[5], SYNSETS[300], SYNSETS[42]])
    dataset = ImageNetVariant(str(root), variant, synset_file=synset_file)
    assert sorted({dataset.get_data_info(i)['gt_label'] for i in range(6)}) == [5, 42, 300]
    assert dataset.metainfo['class_indices'] == [5, 42, 300]
    (root / 'n99999999').mkdir()
    write_jpeg(str(root / 'n99999999' / 'x.jpg'))
    with pytest.raises(ValueError, match="'n99999999' is not an ImageNet synset"):
        ImageNetVariant(str(root), variant, synset_file=synset_file)


def test_bad_settings_name_the_problem(tmp_path, synset_file):
    with pytest.raises(ValueError, match='variant must be one of'):
        ImageNetVariant(str(tmp_path), 'c', synset_file=synset_file)
    with pytest.raises(ValueError, match='set synset_file'):
        ImageNetVariant(str(tmp_path), 'a')
    with pytest.raises(FileNotFoundError, match='folder not found'):
        ImageNetVariant(str(tmp_path / 'missing'), 'r', synset_file=synset_file)
    (tmp_path / 'empty' / SYNSETS[1]).mkdir(parents=True)
    with pytest.raises(ValueError, match='holds no images'):
        ImageNetVariant(str(tmp_path / 'empty'), 'r', synset_file=synset_file)
    short = tmp_path / 'short.txt'
    short.write_text('n01440764 tench\n')
    with pytest.raises(ValueError, match='expected the 1000 distinct ImageNet synsets'):
        ImageNetVariant(str(tmp_path), 'sketch', synset_file=str(short))


def test_subset_accuracy_reads_only_the_sets_classes(tmp_path, synset_file):
    """Hand-made: the best class overall is outside the set; within the set's
    classes the prediction is right for one of two samples."""
    write_release(tmp_path / 'r', [SYNSETS[3], SYNSETS[9]], per_class=1)
    dataset = ImageNetVariant(str(tmp_path / 'r'), 'r', synset_file=synset_file)
    scores = torch.zeros(2, 1000)
    scores[:, 500] = 10.0             # not an ImageNet-R class here: ignored
    scores[0, 3], scores[0, 9] = 2.0, 1.0   # label 3: right
    scores[1, 3], scores[1, 9] = 2.0, 1.0   # label 9: wrong at top-1, right at top-2
    samples = [DataSample().set_pred_score(s).set_gt_label(label)
               for s, label in zip(scores, (3, 9))]
    evaluator = Evaluator([dict(type='SubsetAccuracy', topk=(1, 2))])
    evaluator.dataset_meta = dataset.metainfo
    evaluator.process(samples)
    metrics = evaluator.evaluate(2)
    assert metrics == {'accuracy/top1': 50.0, 'accuracy/top2': 100.0}
    plain = Evaluator([dict(type='SubsetAccuracy', topk=1)])
    plain.process([DataSample().set_pred_score(s).set_gt_label(3) for s in scores])
    assert plain.evaluate(2) == {'accuracy/top1': 0.0}  # class 500 wins without the subset
