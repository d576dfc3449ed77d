"""Train a model from an mmpretrain, mmseg or mmaction2 config.

The config's ``default_scope`` picks the toolbox. ``import mmdyt`` comes
before anything imports a toolbox (mmengine and torch do not), so that its
compatibility fixes and modules are in place.
"""
import argparse

from mmengine.config import Config

import mmdyt  # noqa: F401
from mmdyt.engine.cli import add_common_args, apply_common_args, parse_with_local_rank
from mmdyt.engine.distributed import exit_cpu_distributed
from mmdyt.engine.runner import build_runner
from mmdyt.engine.work_dir import work_dir_lock


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
    return parse_with_local_rank(add_common_args(parser), argv)


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
    return apply_common_args(cfg, args)


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_args(Config.fromfile(args.config), args)
    with work_dir_lock(cfg.work_dir):
        build_runner(cfg).train()
    exit_cpu_distributed()


if __name__ == '__main__':
    main()
