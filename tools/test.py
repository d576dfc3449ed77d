"""Test a checkpoint with an mmpretrain, mmseg or mmaction2 config.

The config's ``default_scope`` picks the toolbox. The arguments are parsed,
and the config path checked, before anything heavy is imported (torch, the
runner, mmdyt), so ``--help`` and a typo answer at once. ``import mmdyt``
comes before anything imports a toolbox, so that its compatibility fixes are
in place.
"""
import argparse
import importlib
import importlib.util
import inspect
import os.path as osp
import sys


def load_cli():
    """:mod:`mmdyt.engine.cli`, the flags train.py and test.py share. It imports
    only argparse, os and mmengine.config; unless mmdyt is imported already, it
    is loaded from its file, since ``import mmdyt.engine.cli`` would run
    ``mmdyt/__init__.py``, which imports torch and registers the models."""
    if 'mmdyt' in sys.modules:
        return importlib.import_module('mmdyt.engine.cli')
    package = importlib.util.find_spec('mmdyt')
    if package is None:
        raise ImportError('mmdyt is not installed: pip install -e . in the repository')
    spec = importlib.util.spec_from_file_location(
        'mmdyt_cli', osp.join(package.submodule_search_locations[0], 'engine', 'cli.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--show-dir', help='save the drawn predictions here')
    parser.add_argument('--fuse-cpu', action='store_true',
                        help='run the linear layers on oneDNN in CPU inference '
                        '(mmdyt.deploy.fuse_for_cpu; logs why when it keeps aten)')
    cli = load_cli()
    args = cli.parse_with_local_rank(cli.add_common_args(parser), argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config} does not exist')
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error('--out must be a .pkl or .pickle file')
    return args


def enable_visualization(cfg, show_dir):
    """Turn on the toolbox's visualization hook and save drawings to ``show_dir``.

    mmpretrain and mmaction2 hooks take ``enable``/``out_dir``; mmseg's takes
    ``draw`` and saves through the visualizer's ``save_dir``. ``interval=1``:
    every test sample is drawn (the hooks' default draws one in 5000 in
    mmpretrain, one in 50 in mmseg and mmaction2).
    """
    from mmengine.registry import HOOKS
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ValueError('--show-dir needs a `visualization` entry in `default_hooks`')
    with HOOKS.switch_scope_and_registry(cfg.get('default_scope')) as registry:
        params = inspect.signature(registry.get(hook['type'])).parameters
    if 'interval' in params:
        hook['interval'] = 1
    if 'out_dir' in params:
        hook.update(enable=True, out_dir=show_dir)
    else:
        hook['draw'] = True
        cfg.visualizer['save_dir'] = show_dir


def merge_args(cfg, args):
    """Merge command line arguments into the config."""
    cfg.load_from = args.checkpoint
    cfg = load_cli().apply_common_args(cfg, args)
    from mmdyt.config_conversion import carry_backbone_width
    for line in carry_backbone_width(cfg, args.cfg_options):
        print(f'--cfg-options: {line}')
    if args.show_dir:
        enable_visualization(cfg, args.show_dir)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.evaluator import DumpResults

    import mmdyt  # noqa: F401 - before any toolbox: compatibility fixes, registries
    from mmdyt.deploy import fuse_for_cpu
    from mmdyt.engine.distributed import exit_cpu_distributed
    from mmdyt.engine.runner import build_runner
    runner = build_runner(merge_args(Config.fromfile(args.config), args))
    if args.fuse_cpu:
        fuse_for_cpu(runner.model)
    if args.out is not None:
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    metrics = runner.test()
    exit_cpu_distributed()
    return metrics


if __name__ == '__main__':
    main()
