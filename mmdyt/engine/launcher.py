"""What tools/train.py and tools/test.py share: the common CLI flags, the
work directory (the checkpoint ``--resume`` continues from, the lock of a
training), distributed set-up and exit without CUDA, and building the
runner."""
import contextlib
import glob
import json
import logging
import os
import os.path as osp
import re
import shutil
import socket
import subprocess
import sys
import time
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
    if 'MASTER_ADDR' not in os.environ:
        os.environ['MASTER_ADDR'] = first_slurm_host(os.environ['SLURM_NODELIST'])
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def first_slurm_host(node_list):
    """The first host name of a SLURM node list (``node[01-04]``) through
    ``scontrol show hostnames``, called with an argument list (no shell:
    the node list is data, never a command).

    Raises:
        RuntimeError: ``scontrol`` is missing or fails (its message quoted).
    """
    scontrol = shutil.which('scontrol')
    if scontrol is None:
        raise RuntimeError('the slurm launcher needs `scontrol` on PATH to find MASTER_ADDR '
                           'from SLURM_NODELIST (or set MASTER_ADDR yourself)')
    proc = subprocess.run([scontrol, 'show', 'hostnames', node_list],
                          capture_output=True, text=True)
    hosts = proc.stdout.split()
    if proc.returncode != 0 or not hosts:
        raise RuntimeError(f'`scontrol show hostnames {node_list}` failed (exit status '
                           f'{proc.returncode}): {proc.stderr.strip() or "no host names"}')
    return hosts[0]


def checkpoint_problem(path):
    """Why ``path`` cannot be a checkpoint to load (missing, empty, a cut-off
    zip archive), or None; legacy (non-zip) pickles are left to torch."""
    if not osp.isfile(path):
        return 'does not exist'
    if osp.getsize(path) == 0:
        return 'is empty (0 bytes)'
    with open(path, 'rb') as f:
        is_zip_start = f.read(4) == b'PK\x03\x04'
    if is_zip_start and not zipfile.is_zipfile(path):
        return 'is truncated or corrupt (its zip archive has no central directory)'
    return None


def _checkpoint_order(path):
    """Sort key of ``epoch_N.pth`` / ``iter_N.pth``: (N, modification time)."""
    number = re.fullmatch(r'(?:epoch|iter)_(\d+)\.pth', osp.basename(path))
    return int(number.group(1)), osp.getmtime(path)


def find_resume_checkpoint(work_dir):
    """The checkpoint ``--resume`` without a path continues from.

    ``work_dir/last_checkpoint`` names it when present (mmengine writes it
    after each save); otherwise the ``epoch_*.pth`` / ``iter_*.pth`` of the
    highest number that reads, skipping (with a warning naming them) files
    cut off by a full disk, so a missing ``last_checkpoint`` never restarts
    a run over its checkpoints. None when the work dir has no checkpoint.

    Raises:
        ValueError: ``last_checkpoint`` is empty or names a checkpoint that is
            missing or truncated; or no ``epoch_*`` / ``iter_*`` file reads
            (each named).
    """
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last, encoding='utf-8', errors='replace') as f:
            target = f.read().strip()
        if not target:
            raise ValueError(f'{last} is empty: it should name the checkpoint to resume; '
                             'give one with --resume PATH or delete the file')
        problem = checkpoint_problem(target)
        if problem is not None:
            raise ValueError(f'{last} names {target}, which {problem}: give a checkpoint '
                             'with --resume PATH')
        return target
    candidates = sorted((path for pattern in ('epoch_*.pth', 'iter_*.pth')
                         for path in glob.glob(osp.join(work_dir, pattern))
                         if re.fullmatch(r'(?:epoch|iter)_\d+\.pth', osp.basename(path))),
                        key=_checkpoint_order, reverse=True)
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            print_log(f'{last} is missing: resuming from the latest readable checkpoint '
                      f'{path}', logger='current', level=logging.WARNING)
            return path
        print_log(f'skipping checkpoint {path}: it {problem}', logger='current',
                  level=logging.WARNING)
    if candidates:
        raise ValueError(f'none of the checkpoints in {work_dir} can be read '
                         f'({", ".join(map(osp.basename, candidates))}): refusing to start '
                         'over them; give one with --resume PATH or another --work-dir')
    return None


def _lock_owner(lock_path):
    try:
        with open(lock_path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def work_dir_lock(work_dir):
    """Hold ``work_dir/.train.lock`` while training, so that a second
    training in the same work dir stops instead of overwriting its
    checkpoints. Taken by rank 0 only (``RANK`` / ``SLURM_PROCID``). A lock
    whose process is gone (same host) is stale and taken over with a
    warning.

    Raises:
        RuntimeError: another live training (pid and host named, and its
            command) holds the lock, or one on another host does.
    """
    rank = int(os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0')))
    if rank != 0:
        yield
        return
    os.makedirs(work_dir, exist_ok=True)
    lock_path = osp.join(work_dir, '.train.lock')
    me = dict(pid=os.getpid(), host=socket.gethostname(), command=' '.join(sys.argv),
              started=time.strftime('%Y-%m-%d %H:%M:%S'))
    while True:
        try:
            fd = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            owner = _lock_owner(lock_path)
            if owner is None and time.time() - osp.getmtime(lock_path) < 5:
                time.sleep(0.2)
                continue
            if owner is not None and (owner.get('host') != me['host'] or
                                      _process_alive(int(owner.get('pid', -1)))):
                raise RuntimeError(
                    f'{work_dir} is in use by another training: pid {owner.get("pid")} on '
                    f'{owner.get("host")}, started {owner.get("started")} ({owner.get("command")}). '
                    f'Wait for it, use another --work-dir, or delete {lock_path} if that '
                    'process is gone')
            print_log(f'removing the stale lock {lock_path} of a training that is gone '
                      f'({owner})', logger='current', level=logging.WARNING)
            os.remove(lock_path)
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        json.dump(me, f)
    try:
        yield
    finally:
        if (_lock_owner(lock_path) or {}).get('pid') == me['pid']:
            os.remove(lock_path)


def check_checkpoint_file(path):
    """Fail early, naming the file, when ``load_from`` / ``--resume`` /
    ``--checkpoint`` is a local file that is missing or a cut-off zip archive
    (torch's format since 1.6), where torch's own message omits the path.
    Remote paths (``scheme://``) and legacy pickles are left to mmengine."""
    if path is None or '://' in str(path):
        return
    problem = checkpoint_problem(path)
    if problem == 'does not exist':
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    if problem is not None:
        raise ValueError(f'cannot read checkpoint {path}: the file {problem}')


def build_runner(cfg):
    """The config's ``runner_type`` if it names one, else mmengine's Runner,
    with :class:`~mmdyt.engine.hooks.LabelRangeHook`; ``resume=True`` without
    ``load_from`` continues from :func:`find_resume_checkpoint`."""
    if cfg.get('resume') is True and cfg.get('load_from') is None:
        cfg.load_from = find_resume_checkpoint(cfg.work_dir)
    check_checkpoint_file(cfg.get('load_from'))
    setup_cpu_distributed(cfg)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    runner.register_hook(dict(type='LabelRangeHook'))
    return runner
