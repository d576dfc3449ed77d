"""The README's demo, shortened (``tools/demo.py --quick``): pretraining on a
tiny Fashion-MNIST written in the real IDX format, two adaptation methods
with two seeds each through tools/train.py and tools/test.py, the table with
its mean / std columns, the claims, the trade-off plot, the token PNGs, the
pretraining cache and the error for missing Fashion-MNIST files."""
import json
import os
import os.path as osp

import numpy as np
import pytest

pytest.importorskip('mmpretrain')
pytest.importorskip('mlxtend')

from dataset_writers import write_idx  # noqa: E402
from train_runs import load_tool  # noqa: E402

demo = load_tool('demo')

# Trainable parameters of the demo's width-96, 6-block ViT with a 5-class head:
# an adapter d=16 is Linear(96, 16) + Linear(16, 96), a dispatcher Linear(96, 1).
HEAD = 96 * 5 + 5
ADAPTER = (96 * 16 + 16) + (16 * 96 + 96)
DISPATCHER = 96 + 1


def write_fashion_mnist(root, num_train=200, num_test=60):
    """Random 28x28 uint8 images, labels cycling over the ten classes, in the
    release's gzipped IDX files."""
    rng = np.random.default_rng(0)
    for split, num in (('train', num_train), ('test', num_test)):
        images_stem, labels_stem = demo.IDX_SPLIT_FILES[split]
        write_idx(osp.join(root, images_stem + '.gz'),
                  rng.integers(0, 256, (num, 28, 28), dtype=np.uint8))
        write_idx(osp.join(root, labels_stem + '.gz'), np.arange(num, dtype=np.uint8) % 10)
    return root


def test_quick_demo_end_to_end_with_two_seeds(tmp_path, monkeypatch, capsys):
    fashion = write_fashion_mnist(str(tmp_path / 'fashion'))
    work_dir = tmp_path / 'demo'
    argv = ['--quick', '--work-dir', str(work_dir), '--fashion-root', fashion,
            '--methods', 'adaptformer', 'dyt-r0.5', '--seeds', '0', '1']
    rows = demo.main(argv)

    assert [row['key'] for row in rows] == ['adaptformer', 'dyt-r0.5']
    adaptformer, dyt = rows
    assert adaptformer['params'] == 6 * ADAPTER + HEAD
    assert dyt['params'] == 6 * (ADAPTER + DISPATCHER) + HEAD
    assert adaptformer['rate'] is None and 0.0 <= dyt['rate'][0] <= 1.0
    assert dyt['gflops'][0] <= adaptformer['gflops'][0] + 1e-4
    for row in rows:
        # mean and standard deviation over the two seeds' test top-1
        per_seed = row['top1_per_seed']
        assert row['seeds'] == 2 and len(per_seed) == 2
        assert row['top1'][0] == pytest.approx(np.mean(per_seed))
        assert row['top1'][1] == pytest.approx(np.std(per_seed, ddof=1))
        assert 0.0 <= row['val_top1'][0] <= 100.0 and row['img_s'] > 0
        for seed in (0, 1):
            assert (work_dir / row['key'] / f'seed{seed}' / 'demo_train.log').stat().st_size
    # one progress line per stage and run
    out = capsys.readouterr().out
    assert 'pretraining the ViT' in out and 'timing inference of 2 models' in out
    assert out.count('] run ') == 4 and 'run 4/4: DyT r=0.5 (d=16), seed 1' in out

    results = (work_dir / 'results.md').read_text()
    header = next(line for line in results.splitlines() if line.startswith('| Method'))
    assert 'Top-1 test (%), 2 seeds' in header and 'Top-1 val (%)' in header
    af_line = next(line for line in results.splitlines() if line.startswith('| AdaptFormer'))
    assert f'{adaptformer["top1"][0]:.1f} ± {adaptformer["top1"][1]:.1f}' in af_line
    dyt_line = next(line for line in results.splitlines() if line.startswith('| DyT r=0.5'))
    assert f'| {dyt["rate"][0]:.3f} ± {dyt["rate"][1]:.3f} |' in dyt_line
    assert f'| {dyt["gflops"][0]:.4f} ± {dyt["gflops"][1]:.4f} |' in dyt_line
    assert '- DyT r=0.5 (d=16) vs AdaptFormer (d=16):' in results
    assert 'Total wall time' in results
    saved = json.loads((work_dir / 'results.json').read_text())
    assert saved['seeds'] == [0, 1] and len(saved['rows']) == 2

    with open(work_dir / 'tradeoff.png', 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    pngs = [p for p in os.listdir(work_dir / 'tokens') if p.endswith('_layers.png')]
    assert 1 <= len(pngs) <= demo.NUM_TOKEN_IMAGES

    # the cross-domain target reuses the cached pretraining; its files get a suffix
    mnist = demo.main(['--quick', '--work-dir', str(work_dir), '--target', 'mnist-1k',
                       '--methods', 'linear', '--seeds', '0'])
    assert mnist[0]['params'] == 96 * 10 + 10  # a 10-class head
    out = capsys.readouterr().out
    assert 'pretraining: cached' in out and '1/1: Linear probe, seed 0' in out
    assert 'adapted to MNIST' in (work_dir / 'results_mnist-1k.md').read_text()
    assert (work_dir / 'tradeoff_mnist-1k.png').is_file()
    run_cfg = (work_dir / 'linear_mnist-1k' / 'seed0' / 'demo_config.py').read_text()
    assert "type='CSVDigits'" in run_cfg and "split='rest'" in run_cfg

    # a second run reuses the pretrained ViT without running tools/train.py
    def no_tool(*args, **kwargs):
        raise AssertionError('pretraining ran again')

    monkeypatch.setattr(demo, 'run_tool', no_tool)
    cached = demo.pretrain(demo.parse_args(argv))
    assert cached == osp.join(str(work_dir), 'pretrain', demo.PRETRAINED_NAME)


def test_claims_only_beyond_the_spread():
    def row(key, label, mean, std, seeds=3):
        return dict(key=key, label=label, top1=(mean, std), gflops=(0.03, 0.0),
                    img_s=100.0, seeds=seeds)

    within = demo.claims([row('dyt-r0.5', 'DyT', 70.0, 0.6), row('adaptformer', 'AF', 69.0, 0.5)])
    assert 'within the spread' in within and '+1.0 points (spread 1.1)' in within
    beyond = demo.claims([row('dyt-r0.5', 'DyT', 70.0, 0.3), row('full', 'Full', 72.0, 0.4)])
    assert 'worse beyond the spread' in beyond
    one_seed = demo.claims([row('dyt-r0.5', 'DyT', 70.0, 0.0, 1),
                            row('linear', 'Lin', 60.0, 0.0, 1)])
    assert 'one seed' in one_seed


def test_missing_fashion_mnist_names_the_package(tmp_path):
    with pytest.raises(SystemExit, match='apt-get install dataset-fashion-mnist'):
        demo.main(['--work-dir', str(tmp_path / 'demo'), '--fashion-root',
                   str(tmp_path / 'nowhere')])


def test_a_failing_run_names_its_log(tmp_path):
    args = demo.parse_args(['--work-dir', str(tmp_path)])
    log = str(tmp_path / 'broken.log')
    with pytest.raises(SystemExit, match='broken.log'):
        demo.run_tool(args, 'train', [str(tmp_path / 'no_such_config.py')], log)
    assert 'no_such_config.py' in open(log).read()


def test_repeated_seeds_are_refused(capsys):
    with pytest.raises(SystemExit):
        demo.parse_args(['--seeds', '0', '0'])
    assert '--seeds must be distinct' in capsys.readouterr().err


def test_every_demo_config_builds():
    from mmdyt.analysis import build_model, count_parameters, load_config
    for key, _, config in demo.METHODS:
        cfg = load_config(osp.join(demo.CONFIG_DIR, config))
        model = build_model(cfg)
        trainable, total = count_parameters(model)
        assert model.head.num_classes == 5 and 0 < trainable <= total, key
        rate = cfg.model.get('rate_loss')
        if key.startswith('dyt-r') or key in ('dynamic-full', 'dyt-moe'):
            expected = float(key[len('dyt-r'):]) if key.startswith('dyt-r') else 0.5
            assert rate.target_rate == expected, key
        else:
            assert rate is None, key
    pretrain = build_model(load_config(osp.join(demo.CONFIG_DIR, demo.PRETRAIN_CONFIG)))
    assert pretrain.head.num_classes == 5
