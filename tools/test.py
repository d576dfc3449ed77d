"""Test a checkpoint with an mmpretrain, mmseg or mmaction2 config.

The config's ``default_scope`` picks the toolbox. ``import mmdyt`` comes
before anything imports a toolbox (mmengine and torch do not), so that its
compatibility fixes and modules are in place.
"""
import argparse
import inspect

from mmengine.config import Config
from mmengine.evaluator import DumpResults
from mmengine.registry import HOOKS

import mmdyt  # noqa: F401
from mmdyt.deploy import fuse_for_cpu
from mmdyt.engine.cli import add_common_args, apply_common_args, parse_with_local_rank
from mmdyt.engine.distributed import exit_cpu_distributed
from mmdyt.engine.runner import build_runner


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--show-dir', help='save the drawn predictions here')
    parser.add_argument('--fuse-cpu', action='store_true',
                        help='run the linear layers on oneDNN in CPU inference '
                        '(mmdyt.deploy.fuse_for_cpu; logs why when it keeps aten)')
    return parse_with_local_rank(add_common_args(parser), argv)


def enable_visualization(cfg, show_dir):
    """Turn on the toolbox's visualization hook and save drawings to ``show_dir``.

    mmpretrain and mmaction2 hooks take ``enable``/``out_dir``; mmseg's takes
    ``draw`` and saves through the visualizer's ``save_dir``.
    """
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ValueError('--show-dir needs a `visualization` entry in `default_hooks`')
    with HOOKS.switch_scope_and_registry(cfg.get('default_scope')) as registry:
        params = inspect.signature(registry.get(hook['type'])).parameters
    if 'out_dir' in params:
        hook.update(enable=True, out_dir=show_dir)
    else:
        hook['draw'] = True
        cfg.visualizer['save_dir'] = show_dir


def merge_args(cfg, args):
    """Merge command line arguments into the config."""
    cfg.load_from = args.checkpoint
    cfg = apply_common_args(cfg, args)
    if args.show_dir:
        enable_visualization(cfg, args.show_dir)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError('--out must be a .pkl or .pickle file')
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
