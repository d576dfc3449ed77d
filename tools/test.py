"""Test a checkpoint with an mmpretrain, mmseg or mmaction2 config.

The config's ``default_scope`` picks the toolbox. ``import mmdyt`` comes
first so that its compatibility fixes and modules are in place.
"""
import argparse
import inspect
import os
import os.path as osp

import mmdyt  # noqa: F401
import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.evaluator import DumpResults
from mmengine.logging import print_log
from mmengine.registry import HOOKS, RUNNERS
from mmengine.runner import Runner


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--show-dir', help='save the drawn predictions here')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, xxx=yyy pairs merged into the config; '
        'a list is key="[a,b]" or key=a,b, nested key="[(a,b),(c,d)]", '
        'quotes needed and no white space')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank since torch 2.0.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def setup_cpu_distributed(cfg):
    """Run the pytorch launcher without CUDA: gloo, CPU process group, CPU DDP.

    mmengine asks for ``nccl`` by default and its pytorch launcher calls
    ``torch.cuda.set_device``; the runner skips its own set-up when a process
    group already exists, so start one here with ``gloo``.
    """
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    env_cfg = cfg.setdefault('env_cfg', ConfigDict())
    dist_cfg = env_cfg.setdefault('dist_cfg', ConfigDict())
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
        print_log('CUDA is unavailable: using the gloo backend instead of nccl',
                  logger='current')
    if cfg.launcher != 'pytorch' or torch.distributed.is_initialized():
        return
    init_kwargs = {k: v for k, v in dist_cfg.items() if k != 'init_backend'}
    torch.distributed.init_process_group(**init_kwargs)
    wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper


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
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.show_dir:
        enable_visualization(cfg, args.show_dir)
    setup_cpu_distributed(cfg)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError('--out must be a .pkl or .pickle file')
    cfg = merge_args(Config.fromfile(args.config), args)
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    return runner.test()


if __name__ == '__main__':
    main()
