"""Run (or collect) the 19 VTAB-1K tasks of one or more method configs and
print the table of DyT Table 5: top-1 per task, the natural / specialized /
structured group means, their mean, and the mean GFLOPs per image.

A VTAB-1K config (e.g. ``configs/cls/dyt/dyt-r0.5-d8_vit-b16_vtab1k.py``)
trains one task; this script picks the task by overriding
``{train,val,test}_dataloader.dataset.task`` and the classes
(``model.head.num_classes``, or ``model.num_classes`` of an early-exit
model), adds the config's own ``vtab_task_options[task]`` (e.g. RepAdapter's
per-task scale) and runs ``tools/train.py`` then ``tools/test.py`` for each,
in ``<work-dir>/<config name>/<task>``.

Reporting: ``--report last`` (the default, the papers' protocol as mmdyt
reads it) tests the checkpoint of the last epoch; ``--report best`` (the
reference DyT and RepAdapter code's way) validates after every epoch, keeps
the checkpoint of the best ``accuracy/top1`` (mmengine's ``save_best``) and
tests that one, in ``<work-dir>/<config name>-best/<task>``. The DyT VTAB-1K
configs validate on the test split, as the reference code does; the
Dyn-Adapter configs on val200. The printed table says which report it is.

Examples::

    # train + test all 19 tasks of the three DyT rates, then print the table
    python tools/analysis_tools/vtab_table.py \
        'configs/cls/dyt/dyt-r*-d8_vit-b16_vtab1k.py' --data-root data/vtab-1k
    # only print the table of results already in the work dirs
    python tools/analysis_tools/vtab_table.py \
        'configs/cls/dyt/dyt-r*-d8_vit-b16_vtab1k.py' --collect-only
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
ACCURACY = 'accuracy/top1'
GFLOPS_KEYS = ('efficiency/gflops', 'early_exit/gflops')
#: --report -> (work dir suffix, extra --cfg-options, the table's note).
REPORTS = {
    'last': ('', [], 'accuracy of the last epoch'),
    'best': ('-best', ['train_cfg.val_interval=1', f'default_hooks.checkpoint.save_best={ACCURACY}',
                       'default_hooks.checkpoint.rule=greater'],
             'best validation accuracy over the epochs (reference code)'),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('configs', help='config file or glob pattern (quote it)')
    parser.add_argument('--data-root', default='data/vtab-1k',
                        help='folder holding the 19 task folders')
    parser.add_argument('--work-dir', default='work_dirs/vtab1k',
                        help='results go to WORK_DIR/<config name>/<task>')
    parser.add_argument('--tasks', nargs='+', metavar='TASK',
                        help='a subset of the 19 tasks (mmdyt.datasets.VTAB1K_TASKS, '
                        'default: all)')
    parser.add_argument('--collect-only', action='store_true',
                        help='do not run anything, read the existing results')
    parser.add_argument('--skip-done', action='store_true',
                        help='do not rerun a task that already has a test result')
    parser.add_argument('--dry-run', action='store_true', help='print the commands only')
    parser.add_argument('--report', choices=sorted(REPORTS), default='last',
                        help="'last': test the last epoch's checkpoint; 'best': validate every "
                        "epoch and test the best one (the reference code's way)")
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='further overrides passed to train.py and test.py')
    args = parser.parse_args(argv)
    if not glob.glob(args.configs):
        raise FileNotFoundError(f'no config matches {args.configs!r}')
    from mmdyt.datasets import VTAB1K_TASKS  # after the checks above: it imports torch
    unknown = sorted(set(args.tasks or ()) - set(VTAB1K_TASKS))
    if unknown:
        parser.error(f'unknown tasks {unknown}; the tasks: {", ".join(VTAB1K_TASKS)}')
    args.tasks = args.tasks or list(VTAB1K_TASKS)
    return args


if __name__ == '__main__':
    parse_args()  # --help and argument errors before the heavy imports below

from mmengine.config import Config  # noqa: E402
from mmengine.runner import find_latest_checkpoint  # noqa: E402

from mmdyt.datasets import VTAB1K_GROUPS, VTAB1K_TASKS  # noqa: E402


def task_options(task, data_root, cfg):
    """``--cfg-options`` that turn the VTAB-1K config ``cfg`` to ``task``:
    the classes, the dataloaders and the config's ``vtab_task_options``."""
    classes = 'model.head.num_classes' if 'head' in cfg.model else 'model.num_classes'
    options = [f'{classes}={VTAB1K_TASKS[task][1]}']
    for loader in LOADERS:
        options += [f'{loader}.dataset.task={task}', f'{loader}.dataset.data_root={data_root}']
    extra = cfg.get('vtab_task_options', {}).get(task, {})
    return options + [f'{key}={value}' for key, value in extra.items()]


def tool_command(tool, config, positional, work_dir, options):
    """``python tools/<tool>.py CONFIG [positional...] --work-dir W --cfg-options ...``"""
    return ([sys.executable, osp.join(TOOLS, f'{tool}.py'), config, *positional,
             '--work-dir', work_dir, '--cfg-options'] + options)


def best_checkpoint(work_dir):
    """The checkpoint ``save_best`` kept in ``work_dir``."""
    found = sorted(glob.glob(osp.join(work_dir, f'best_{ACCURACY.replace("/", "_")}_*.pth')),
                   key=osp.getmtime)
    if not found:
        raise FileNotFoundError(f'{work_dir}: no best_*.pth checkpoint, was the run '
                                'validated (--report best)?')
    return found[-1]


def latest_checkpoint(work_dir):
    """The checkpoint named in ``work_dir/last_checkpoint`` (mmengine's)."""
    checkpoint = find_latest_checkpoint(work_dir)
    if checkpoint is None:
        raise FileNotFoundError(f'{osp.join(work_dir, "last_checkpoint")}: no checkpoint, '
                                'did training finish?')
    return checkpoint


def collect(work_dir):
    """The newest test metrics (``accuracy/top1`` ...) in ``work_dir``, from
    the ``<timestamp>/<timestamp>.json`` a test run writes, or None."""
    found = []
    for path in glob.glob(osp.join(work_dir, '*', '*.json')):
        with open(path) as f:
            try:
                metrics = json.load(f)
            except json.JSONDecodeError:
                continue
        if isinstance(metrics, dict) and ACCURACY in metrics:
            found.append((osp.getmtime(path), metrics))
    return max(found, key=lambda item: item[0])[1] if found else None


def mean(values):
    return sum(values) / len(values) if values else None


def summarize(results):
    """``results``: task -> metrics or None. Returns the row: per-task
    accuracy, group means (None while a task of the group is missing), their
    mean and the mean GFLOPs over the tasks that have results."""
    row = {task: (m or {}).get(ACCURACY) for task, m in results.items()}
    for group in VTAB1K_GROUPS:
        accs = [row.get(t) for t, (g, _) in VTAB1K_TASKS.items() if g == group]
        row[group] = None if None in accs else mean(accs)
    groups = [row[g] for g in VTAB1K_GROUPS]
    row['group_mean'] = None if None in groups else mean(groups)
    row['gflops'] = mean([next(m[k] for k in GFLOPS_KEYS if k in m) for m in results.values()
                          if m and any(k in m for k in GFLOPS_KEYS)])
    return row


def format_table(rows, report='last'):
    """Markdown table, one row per config: the 19 tasks, the group means,
    their mean and GFLOPs, after a line saying which accuracy it reports."""
    columns = list(VTAB1K_TASKS) + list(VTAB1K_GROUPS) + ['group_mean', 'gflops']
    lines = [f'Top-1: {REPORTS[report][2]} (--report {report}).', '',
             '| method | ' + ' | '.join(columns) + ' |',
             '|' + ' --- |' * (len(columns) + 1)]
    for name, row in rows.items():
        cells = ['-' if row.get(c) is None else f'{row[c]:.2f}' for c in columns]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def run_task(config, task, work_dir, args):
    """Train ``task``, then test the checkpoint training ended with (or the
    best one, ``--report best``)."""
    options = task_options(task, args.data_root, Config.fromfile(config)) + list(
        args.cfg_options)
    train = tool_command('train', config, [], work_dir, options + REPORTS[args.report][1])
    pick = best_checkpoint if args.report == 'best' else latest_checkpoint
    if args.dry_run:
        print(' '.join(train))
        print(' '.join(tool_command('test', config, [f'<checkpoint of {pick.__name__}>'],
                                    work_dir, options)))
        return
    os.makedirs(work_dir, exist_ok=True)
    subprocess.run(train, check=True)
    subprocess.run(tool_command('test', config, [pick(work_dir)], work_dir, options), check=True)


def main(argv=None):
    args = parse_args(argv)
    configs = sorted(glob.glob(args.configs))
    if not configs:
        raise FileNotFoundError(f'no config matches {args.configs!r}')
    rows = {}
    for config in configs:
        name = osp.splitext(osp.basename(config))[0] + REPORTS[args.report][0]
        results = {}
        for task in args.tasks:
            work_dir = osp.join(args.work_dir, name, task)
            done = collect(work_dir) if osp.isdir(work_dir) else None
            if not args.collect_only and not (args.skip_done and done):
                run_task(config, task, work_dir, args)
                done = collect(work_dir)
            results[task] = done
        rows[name] = summarize(results)
    print(format_table(rows, args.report))
    return rows


if __name__ == '__main__':
    main()
