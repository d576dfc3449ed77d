"""The README's demo, shortened (``tools/demo.py --quick``): pretraining on a
tiny Fashion-MNIST written in the real IDX format, two adaptation methods
through tools/train.py and tools/test.py, the table, the token PNGs, the
pretraining cache and the error for missing Fashion-MNIST files."""
import importlib.util
import os
import os.path as osp

import numpy as np
import pytest

pytest.importorskip('mmpretrain')
pytest.importorskip('mlxtend')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from dataset_writers import write_idx  # noqa: E402

spec = importlib.util.spec_from_file_location('mmdyt_tool_demo', osp.join(ROOT, 'tools', 'demo.py'))
demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo)

# Trainable parameters of the demo's width-96, 6-block ViT with a 10-class head:
# an adapter d=16 is Linear(96, 16) + Linear(16, 96), a dispatcher Linear(96, 1).
HEAD = 96 * 10 + 10
ADAPTER = (96 * 16 + 16) + (16 * 96 + 96)
DISPATCHER = 96 + 1


def write_fashion_mnist(root, num_train=64, num_test=20):
    """Random 28x28 uint8 images and labels in the release's gzipped IDX files."""
    rng = np.random.default_rng(0)
    for split, num in (('train', num_train), ('test', num_test)):
        images_stem, labels_stem = demo.IDX_SPLIT_FILES[split]
        write_idx(osp.join(root, images_stem + '.gz'),
                  rng.integers(0, 256, (num, 28, 28), dtype=np.uint8))
        write_idx(osp.join(root, labels_stem + '.gz'), np.arange(num, dtype=np.uint8) % 10)
    return root


def test_quick_demo_end_to_end(tmp_path, monkeypatch):
    fashion = write_fashion_mnist(str(tmp_path / 'fashion'))
    work_dir = str(tmp_path / 'demo')
    argv = ['--quick', '--work-dir', work_dir, '--fashion-root', fashion,
            '--methods', 'adaptformer', 'dyt-r0.5']
    rows = demo.main(argv)

    assert [row['key'] for row in rows] == ['adaptformer', 'dyt-r0.5']
    adaptformer, dyt = rows
    assert adaptformer['params'] == 6 * ADAPTER + HEAD
    assert dyt['params'] == 6 * (ADAPTER + DISPATCHER) + HEAD
    assert adaptformer['rate'] is None and 0.0 <= dyt['rate'] <= 1.0
    assert dyt['gflops'] <= adaptformer['gflops'] + 1e-4
    for row in rows:
        assert 0.0 <= row['top1'] <= 100.0 and row['img_s'] > 0
    results = (tmp_path / 'demo' / 'results.md').read_text()
    assert '| AdaptFormer (d=16) |' in results and '| DyT r=0.5 (d=16) |' in results
    assert 'Total wall time' in results
    pngs = [p for p in os.listdir(tmp_path / 'demo' / 'tokens') if p.endswith('_layers.png')]
    assert len(pngs) == demo.NUM_TOKEN_DIGITS

    # a second run reuses the pretrained ViT without running tools/train.py
    def no_tool(*args, **kwargs):
        raise AssertionError('pretraining ran again')

    monkeypatch.setattr(demo, 'run_tool', no_tool)
    cached = demo.pretrain(demo.parse_args(argv + ['--work-dir', work_dir]))
    assert cached == osp.join(work_dir, 'pretrain', demo.PRETRAINED_NAME)


def test_missing_fashion_mnist_names_the_package(tmp_path):
    with pytest.raises(SystemExit, match='apt-get install dataset-fashion-mnist'):
        demo.main(['--work-dir', str(tmp_path / 'demo'), '--fashion-root',
                   str(tmp_path / 'nowhere')])
