"""The work directory of a run: the checkpoint ``--resume`` continues from,
checkpoint files that cannot be read, and the lock of a training."""
import contextlib
import glob
import json
import logging
import os
import os.path as osp
import re
import socket
import sys
import time
import zipfile

from mmengine.logging import print_log


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
                    f'{owner.get("host")}, started {owner.get("started")} '
                    f'({owner.get("command")}). Wait for it, use another --work-dir, or '
                    f'delete {lock_path} if that process is gone')
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
