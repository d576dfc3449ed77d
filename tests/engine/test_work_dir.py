"""mmdyt.engine.work_dir and the slurm host look-up: the checkpoint
``--resume`` continues from (the latest readable one; a missing, truncated
or badly named one named in the error), one training per work dir, and the
slurm launcher's host look-up."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmdyt.engine.distributed import first_slurm_host
from mmdyt.engine.work_dir import find_resume_checkpoint, work_dir_lock
import train_runs


def checkpoint(path, value=0):
    torch.save(dict(meta=dict(iter=value), state_dict={}), path)
    return str(path)


def truncate(path):
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:len(data) // 2])


def test_resume_finds_the_latest_readable_checkpoint_without_last_checkpoint(tmp_path):
    for i in (2, 10, 4):
        checkpoint(tmp_path / f'iter_{i}.pth', i)
    truncate(tmp_path / 'iter_10.pth')
    (tmp_path / 'iter_x.pth').write_text('not ours')
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')
    for i in (2, 4):
        truncate(tmp_path / f'iter_{i}.pth')
    with pytest.raises(ValueError, match=r'none of the checkpoints in .* can be read '
                       r'\(iter_10\.pth, iter_4\.pth, iter_2\.pth\): refusing'):
        find_resume_checkpoint(str(tmp_path))
    assert find_resume_checkpoint(str(tmp_path / 'fresh')) is None


def test_resume_through_train_py_takes_the_latest_readable_checkpoint(tmp_path):
    """Train 2 iterations (checkpoints at 1 and 2), lose ``last_checkpoint``
    and cut ``iter_2.pth`` as a full disk does: ``--resume`` continues from
    iteration 1 instead of starting over."""
    task = train_runs.write_task(tmp_path / 'data', num_train=8)
    body = 'train_cfg = dict(max_iters={})\ndefault_hooks = dict(checkpoint=dict(interval=1))\n'
    work = tmp_path / 'work'
    train_runs.train_in_process(train_runs.write_config(tmp_path / 'a.py', task, body.format(2)),
                                work, '--no-validate')
    os.remove(work / 'last_checkpoint')
    truncate(work / 'iter_2.pth')
    train_runs.train_in_process(train_runs.write_config(tmp_path / 'b.py', task, body.format(3)),
                                work, '--no-validate', '--resume')
    assert sorted(train_runs.read_losses(work)) == [1, 2, 3]
    assert (work / 'iter_3.pth').exists()
    logs = '\n'.join(p.read_text() for p in work.glob('*/*.log'))
    assert f'skipping checkpoint {work}/iter_2.pth: it is truncated' in logs
    assert 'resumed epoch: 0, iter: 1' in logs


def test_resume_from_a_truncated_checkpoint_names_it(tmp_path):
    task = train_runs.write_task(tmp_path / 'data', num_train=8)
    path = checkpoint(tmp_path / 'truncated.pth')
    truncate(path)
    with pytest.raises(ValueError, match=rf'cannot read checkpoint {path}: the file is truncated'):
        train_runs.train_on_task(tmp_path, task, extra_args=['--resume', path])


def test_resume_from_a_missing_checkpoint_names_it(tmp_path):
    task = train_runs.write_task(tmp_path / 'data', num_train=8)
    path = tmp_path / 'iter_9.pth'
    with pytest.raises(FileNotFoundError, match=rf'checkpoint {path} does not exist'):
        train_runs.train_on_task(tmp_path, task, extra_args=['--resume', path])


@pytest.mark.parametrize('content, message', [
    ('', 'last_checkpoint is empty'),
    ('{dir}/iter_3.pth', r'last_checkpoint names .*iter_3\.pth, which is truncated'),
    ('{dir}/iter_9.pth', r'last_checkpoint names .*iter_9\.pth, which does not exist'),
])
def test_bad_last_checkpoint_names_the_file(tmp_path, content, message):
    truncate(checkpoint(tmp_path / 'iter_3.pth'))
    (tmp_path / 'last_checkpoint').write_text(content.format(dir=tmp_path))
    with pytest.raises(ValueError, match=message):
        find_resume_checkpoint(str(tmp_path))


def test_second_training_in_a_work_dir_stops(tmp_path):
    holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        lock = tmp_path / '.train.lock'
        lock.write_text(json.dumps(dict(pid=holder.pid, host=socket.gethostname(),
                                        command='tools/train.py other.py', started='now')))
        with pytest.raises(RuntimeError, match=rf'{tmp_path} is in use by another training: '
                           rf'pid {holder.pid} on .*tools/train.py other.py'):
            with work_dir_lock(str(tmp_path)):
                pass
    finally:
        holder.kill()
        holder.wait()
    with work_dir_lock(str(tmp_path)):  # the holder is gone: a stale lock
        assert json.loads(lock.read_text())['pid'] == os.getpid()
    assert not lock.exists()
    with work_dir_lock(str(tmp_path)):
        with pytest.raises(RuntimeError, match=f'pid {os.getpid()}'):
            with work_dir_lock(str(tmp_path)):
                pass


def test_scontrol_gets_the_node_list_as_one_argument(tmp_path, monkeypatch):
    marker = tmp_path / 'ran'
    fake = tmp_path / 'scontrol'
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > ' + str(tmp_path / 'args') +
                    '\necho host-a\necho host-b\n')
    fake.chmod(0o755)
    monkeypatch.setenv('PATH', f'{tmp_path}{os.pathsep}{os.environ["PATH"]}')
    node_list = f'node[1-2];touch {marker}'
    assert first_slurm_host(node_list) == 'host-a'
    assert not marker.exists()
    assert (tmp_path / 'args').read_text().splitlines() == ['show', 'hostnames', node_list]
    monkeypatch.setenv('PATH', str(tmp_path / 'empty'))
    with pytest.raises(RuntimeError, match='needs `scontrol` on PATH'):
        first_slurm_host('node1')
