"""The work directory of a run: the checkpoint ``--resume`` continues from,
checkpoint files that cannot be read, loading them without running code
from them, and the lock of a training."""
import contextlib
import fcntl
import glob
import json
import logging
import os
import os.path as osp
import pickle
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


def _lock_owner(text):
    """The owner ``dict(pid=int > 0, host=str, ...)`` the lock file's
    ``text`` names, or None when it is not such a JSON object (empty, cut
    off, another format)."""
    try:
        owner = json.loads(text)
    except ValueError:
        return None
    if not isinstance(owner, dict):
        return None
    pid, host = owner.get('pid'), owner.get('host')
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0 or \
            not isinstance(host, str):
        return None
    return owner


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_lock(fd):
    """The whole text of the open lock file ``fd`` (undecodable bytes
    replaced)."""
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b''.join(chunks).decode('utf-8', errors='replace')


def _in_use_message(work_dir, lock_path, owner):
    if owner is None:
        who = 'a process that is writing the lock file now'
    else:
        who = (f'pid {owner.get("pid")} on {owner.get("host")}, started '
               f'{owner.get("started")} ({owner.get("command")})')
    return (f'{work_dir} is in use by another training: {who}. Wait for it, use another '
            f'--work-dir, or delete {lock_path} if that process is gone')


def _open_locked(lock_path):
    """Open (creating) ``lock_path`` and try to take its ``flock``; returns
    ``(fd, locked)``. ``locked`` is only True for the file at ``lock_path``
    now (one removed and recreated meanwhile is opened again)."""
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return fd, False
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
        except FileNotFoundError:
            same = False
        if same:
            return fd, True
        os.close(fd)  # its holder removed it while we opened it: take the new file


@contextlib.contextmanager
def work_dir_lock(work_dir):
    """Hold ``work_dir/.train.lock`` while training, so that a second
    training in the same work dir stops instead of overwriting its
    checkpoints. Taken by rank 0 only (``RANK`` / ``SLURM_PROCID``).

    The holder keeps an exclusive ``flock`` on the file (released by the
    kernel when the process ends, however it ends) and writes its pid, host
    and command into it. Whoever gets the ``flock`` decides, while holding
    it, whether the file's owner is gone, so exactly one of several
    processes takes a stale lock over. A file whose owner is gone (same
    host), or that names no owner (empty, cut off, not a JSON object with a
    positive int ``pid``) is stale and taken over with a warning; one that
    names a live process without holding the ``flock`` (a training of an
    earlier mmdyt, which did not take it) or a process on another host is
    not.

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
    deadline = time.time() + 5
    while True:
        fd, locked = _open_locked(lock_path)
        text = _read_lock(fd)
        owner = _lock_owner(text)
        if locked:
            break
        os.close(fd)
        # Held by a live process, which may not have written its name over a
        # stale owner's yet.
        if owner is not None and (owner['host'] != me['host'] or
                                  _process_alive(owner['pid'])) or time.time() > deadline:
            raise RuntimeError(_in_use_message(work_dir, lock_path, owner))
        time.sleep(0.05)
    try:
        if owner is not None and owner['pid'] != me['pid'] and (
                owner['host'] != me['host'] or _process_alive(owner['pid'])):
            raise RuntimeError(_in_use_message(work_dir, lock_path, owner))
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(me).encode('utf-8'))
        if text:
            what = (f'of a training that is gone ({owner})' if owner is not None else
                    f'that names no training (content {text[:80]!r})')
            print_log(f'took over the stale lock {lock_path} {what}', logger='current',
                      level=logging.WARNING)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield
    finally:
        try:
            os.remove(lock_path)  # still ours: we hold the flock of this very file
        finally:
            os.close(fd)


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


def _unsafe_checkpoint(filename, error):
    """The error for a checkpoint that ``torch.load(weights_only=True)``
    refuses, naming the file and torch's reason."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = next((line for line in lines if 'global' in line.lower()
                   and not line.startswith('Weights only load failed')),
                  lines[-1] if lines else type(error).__name__)
    return pickle.UnpicklingError(
        f'cannot read checkpoint {filename} safely: it holds objects other than tensors and '
        f'plain Python data ({reason}). mmdyt loads checkpoints with '
        'torch.load(weights_only=True), so that no code in a file runs; re-save the weights '
        '(torch.save of its state_dict) from a Python session if, and only if, you trust '
        'where the file comes from')


def load_from_local(filename, map_location=None):
    """mmengine's loader of local checkpoint files, with
    ``torch.load(weights_only=True)`` whatever torch's default or
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` say.

    Raises:
        FileNotFoundError: ``filename`` does not exist (named).
        pickle.UnpicklingError: it holds objects a weights-only load refuses
            (named, with the object).
    """
    import torch
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise _unsafe_checkpoint(filename, error) from None


def load_from_http(filename, map_location=None, model_dir=None, progress=os.isatty(0)):
    """mmengine's ``http://`` / ``https://`` loader (rank 0 downloads first)
    with ``weights_only=True``: ``torch.hub.load_state_dict_from_url``, which
    mmengine calls, unpickles everything unless told otherwise."""
    import torch
    from mmengine.dist import get_dist_info

    def load():
        try:
            return torch.hub.load_state_dict_from_url(
                filename, model_dir=model_dir, map_location=map_location, progress=progress,
                weights_only=True)
        except pickle.UnpicklingError as error:
            raise _unsafe_checkpoint(filename, error) from None

    rank, world_size = get_dist_info()
    if rank == 0:
        checkpoint = load()
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            checkpoint = load()
    return checkpoint


def use_weights_only_loaders():
    """Make mmengine's ``CheckpointLoader`` (``load_from`` / resume of the
    runner, ``load_checkpoint``, ``_load_checkpoint``) read local files and
    http(s) URLs through :func:`load_from_local` / :func:`load_from_http`,
    with ``torch.load(weights_only=True)``: mmengine 0.10.7 calls
    ``torch.load`` without ``weights_only``, which an environment with
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (or torch < 2.6) turns into a full
    unpickling that runs code from the file. Idempotent."""
    from mmengine.runner import CheckpointLoader
    CheckpointLoader.register_scheme('', load_from_local, force=True)
    CheckpointLoader.register_scheme(('http://', 'https://'), load_from_http, force=True)


def load_checkpoint_file(filename, map_location='cpu'):
    """The checkpoint ``filename`` (a local path or a URL of a scheme
    mmengine knows) read with :func:`use_weights_only_loaders` in place."""
    use_weights_only_loaders()
    from mmengine.runner import CheckpointLoader
    return CheckpointLoader.load_checkpoint(filename, map_location=map_location)
