"""Train a model from an mmpretrain, mmseg or mmaction2 config.

The config's ``default_scope`` picks the toolbox. The arguments are parsed,
and the config path checked, before anything heavy is imported (torch, the
runner, mmdyt), so ``--help`` and a typo answer at once. ``import mmdyt``
comes before anything imports a toolbox, so that its compatibility fixes are
in place.
"""
import argparse
import importlib
import importlib.util
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
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or, without a path, from the '
        'one last_checkpoint names in the work directory, else its latest '
        'readable epoch_*/iter_*.pth')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual over the base batch size')
    cli = load_cli()
    args = cli.parse_with_local_rank(cli.add_common_args(parser), argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config} does not exist')
    return args


def merge_args(cfg, args):
    """Merge command line arguments into the config."""
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise ValueError('--auto-scale-lr needs `auto_scale_lr.base_batch_size` '
                             'in the config')
        cfg.auto_scale_lr.enable = True
    cfg = load_cli().apply_common_args(cfg, args)
    from mmdyt.config_conversion import carry_backbone_width
    for line in carry_backbone_width(cfg, args.cfg_options):
        print(f'--cfg-options: {line}')
    return cfg


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config

    import mmdyt  # noqa: F401 - before any toolbox: compatibility fixes, registries
    from mmdyt.engine.distributed import exit_cpu_distributed
    from mmdyt.engine.runner import build_runner
    from mmdyt.engine.work_dir import work_dir_lock
    cfg = merge_args(Config.fromfile(args.config), args)
    with work_dir_lock(cfg.work_dir):
        build_runner(cfg).train()
    exit_cpu_distributed()


if __name__ == '__main__':
    main()
