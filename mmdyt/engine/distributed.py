"""Distributed runs without CUDA (gloo, CPU DDP) under the pytorch and
slurm launchers, and leaving such a run."""
import logging
import os
import shutil
import subprocess
import sys

import torch
from mmengine.config import ConfigDict
from mmengine.logging import print_log


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
