"""What tools/train.py and tools/test.py share: the common CLI flags, the
work directory, distributed set-up and exit without CUDA, and building the
runner."""
import logging
import os
import os.path as osp
import subprocess
import sys
import zipfile

import torch
from mmengine.config import ConfigDict, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


def add_common_args(parser):
    """``--work-dir``, ``--cfg-options``, ``--launcher`` and both spellings of
    ``--local-rank`` (torch.distributed.launch passes ``--local-rank`` since
    torch 2.0)."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
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
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def parse_with_local_rank(parser, argv=None):
    """Parse and export ``LOCAL_RANK`` when the launcher did not."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def apply_common_args(cfg, args):
    """Launcher, work dir (CLI > config > config file name) and
    ``--cfg-options`` into ``cfg``."""
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def setup_cpu_distributed(cfg):
    """Run the pytorch or slurm launcher without CUDA: gloo, CPU process
    group, CPU DDP.

    mmengine asks for ``nccl`` by default and its pytorch and slurm launchers
    call ``torch.cuda.set_device``; the runner skips its own set-up when a
    process group already exists, so start one here with ``gloo``.
    """
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    env_cfg = cfg.setdefault('env_cfg', ConfigDict())
    dist_cfg = env_cfg.setdefault('dist_cfg', ConfigDict())
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
        print_log('CUDA is unavailable: using the gloo backend instead of nccl',
                  logger='current')
    if cfg.launcher not in ('pytorch', 'slurm') or torch.distributed.is_initialized():
        return
    if cfg.launcher == 'slurm':
        export_slurm_env()
    init_kwargs = {k: v for k, v in dist_cfg.items() if k != 'init_backend'}
    torch.distributed.init_process_group(**init_kwargs)
    wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper


def exit_cpu_distributed():
    """Leave a process whose work ran on a gloo process group.

    With torch 2.12, gloo's teardown at interpreter exit sometimes aborts the
    process ("terminate called without an active exception", SIGABRT) and
    ``destroy_process_group`` may hang once a peer has gone, after the run
    has finished and saved everything. So every rank waits for the others,
    flushes its logs and leaves with ``os._exit(0)``. Does nothing without a
    gloo process group.
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_backend() != 'gloo':
        return
    dist.barrier()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def export_slurm_env():
    """RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT from the
    SLURM_* variables, as mmengine's slurm launcher sets them (which, without
    CUDA, fails in ``torch.cuda.set_device``)."""
    node_list = os.environ['SLURM_NODELIST']
    os.environ.setdefault(
        'MASTER_ADDR', subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1'))
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def check_checkpoint_file(path):
    """Fail early, naming the file, when ``load_from`` / ``--resume`` /
    ``--checkpoint`` is a local file that is missing or a cut-off zip archive
    (torch's format since 1.6), where torch's own message omits the path.
    Remote paths (``scheme://``) and legacy pickles are left to mmengine."""
    if path is None or '://' in str(path):
        return
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    with open(path, 'rb') as f:
        is_zip_start = f.read(4) == b'PK\x03\x04'
    if is_zip_start and not zipfile.is_zipfile(path):
        raise ValueError(f'cannot read checkpoint {path}: the file is truncated or corrupt '
                         '(its zip archive has no central directory)')


def build_runner(cfg):
    """The config's ``runner_type`` if it names one, else mmengine's Runner."""
    check_checkpoint_file(cfg.get('load_from'))
    setup_cpu_distributed(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
