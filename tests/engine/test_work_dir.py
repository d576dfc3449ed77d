"""mmdyt.engine.work_dir and the slurm host look-up: the checkpoint
``--resume`` continues from (the latest readable one; a missing, truncated
or badly named one named in the error), one training per work dir, and the
slurm launcher's host look-up."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mmdyt.engine import work_dir
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


#: One racer: loads work_dir.py alone (no torch import), waits for ``go``,
#: takes the lock; the winner writes 'won' and holds it until the others
#: have answered, a loser writes 'lost: <error>'.
RACER = '''
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location('work_dir', sys.argv[1])
work_dir = importlib.util.module_from_spec(spec)
spec.loader.exec_module(work_dir)
root, go, out, count = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
while not os.path.exists(go):
    time.sleep(0.001)
def answers():
    return len([n for n in os.listdir(os.path.dirname(out)) if n.startswith('answer')])
try:
    with work_dir.work_dir_lock(root):
        with open(out, 'w') as f:
            f.write('won')
        deadline = time.time() + 20
        while answers() < count and time.time() < deadline:
            time.sleep(0.01)
except RuntimeError as error:
    with open(out, 'w') as f:
        f.write('lost: ' + str(error))
'''


def dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_racing_for_a_stale_lock_one_process_wins(tmp_path):
    """Processes that all find the same stale lock: exactly one takes it
    over, the others stop naming the winner (several rounds)."""
    module = Path(__file__).resolve().parents[2] / 'mmdyt' / 'engine' / 'work_dir.py'
    script = tmp_path / 'racer.py'
    script.write_text(RACER)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    count = 6
    for round_ in range(4):
        root = tmp_path / f'round{round_}'
        root.mkdir()
        (root / '.train.lock').write_text(json.dumps(dict(
            pid=dead_pid(), host=socket.gethostname(), command='gone', started='then')))
        answers = tmp_path / f'answers{round_}'
        answers.mkdir()
        go = tmp_path / f'go{round_}'
        procs = [subprocess.Popen([sys.executable, str(script), str(module), str(root), str(go),
                                   str(answers / f'answer{i}'), str(count)], env=env)
                 for i in range(count)]
        time.sleep(1.0)  # let them all reach the start line
        go.touch()
        for proc in procs:
            assert proc.wait(timeout=60) == 0
        results = [(answers / f'answer{i}').read_text() for i in range(count)]
        winners = [i for i, text in enumerate(results) if text == 'won']
        assert len(winners) == 1, results
        winner_pid = procs[winners[0]].pid
        for text in results:
            assert text == 'won' or (text.startswith('lost: ') and f'pid {winner_pid}' in text), \
                results
        assert not (root / '.train.lock').exists()


@pytest.mark.parametrize('content', [
    b'{"pid": "abc", "host": "HOST"}', b'null', b'[1, 2]', b'', b'\x80\x81\xfe\x00garbage',
    b'{"pid": -1, "host": "HOST"}', b'{"pid": 0}', b'{"pid": true, "host": "HOST"}', b'{"pid'])
def test_a_corrupt_lock_is_taken_over_with_a_warning(tmp_path, content, monkeypatch):
    """A lock file that names no training (no process holds it): taken
    over, the warning quoting what it held; never a traceback."""
    logged = []
    monkeypatch.setattr(work_dir, 'print_log', lambda msg, **kwargs: logged.append(msg))
    lock = tmp_path / '.train.lock'
    lock.write_bytes(content.replace(b'HOST', socket.gethostname().encode()))
    with work_dir_lock(str(tmp_path)):
        assert json.loads(lock.read_text())['pid'] == os.getpid()
    assert not lock.exists()
    if content:
        assert len(logged) == 1 and logged[0].startswith(f'took over the stale lock {lock} '
                                                         'that names no training (content ')
    else:
        assert logged == []
