"""``tools/slurm_train.sh`` under a fake ``srun`` (and ``scontrol``) on PATH.

The fake ``srun`` parses the options the script passes, records them, and
starts ``--ntasks`` copies of the command with the variables a real
``srun`` sets (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODELIST,
...). mmengine's slurm launcher then asks ``scontrol show hostname`` for the
master address, as on a cluster.
"""
import json
import socket
import stat
import sys

import train_runs

FAKE_SRUN = '''#!{python}
"""Fake srun: records its options, starts --ntasks copies of the command."""
import json, os, subprocess, sys

args, options = sys.argv[1:], {{}}
while args and args[0].startswith('-'):
    arg = args.pop(0)
    if '=' in arg:
        key, value = arg.split('=', 1)
    elif arg in ('-p', '--partition', '-J', '--job-name'):
        key, value = arg, args.pop(0)
    else:
        key, value = arg, True
    options[key] = value
with open(os.environ['FAKE_SRUN_RECORD'], 'w') as f:
    json.dump(dict(options=options, command=args), f)
ntasks = int(options['--ntasks'])
procs = [subprocess.Popen(args, env=dict(
    os.environ, SLURM_PROCID=str(i), SLURM_NTASKS=str(ntasks), SLURM_LOCALID=str(i),
    SLURM_NODEID='0', SLURM_NNODES='1', SLURM_NODELIST='fakenode[1]',
    SLURM_STEP_NODELIST='fakenode[1]', SLURM_JOB_ID='4242',
    SLURM_JOB_NAME=options['--job-name'], SLURM_CPUS_PER_TASK=options['--cpus-per-task']))
    for i in range(ntasks)]
sys.exit(max(p.wait() for p in procs))
'''
FAKE_SCONTROL = '''#!/bin/sh
# Fake scontrol: `scontrol show hostname LIST` -> this machine.
echo 127.0.0.1
'''


def write_executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_slurm_train_with_fake_srun(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    write_executable(bin_dir / 'srun', FAKE_SRUN.format(python=sys.executable))
    write_executable(bin_dir / 'scontrol', FAKE_SCONTROL)
    task = train_runs.write_task(tmp_path / 'data')
    config = train_runs.write_config(tmp_path / 'cfg.py', task)
    work_dir = tmp_path / 'work'
    record = tmp_path / 'srun.json'
    env = train_runs.tool_env()
    _, out = train_runs.run(
        ['bash', train_runs.ROOT / 'tools' / 'slurm_train.sh', 'debug', 'dyt-test', config,
         work_dir, '--no-validate', '--cfg-options', 'train_cfg.max_iters=2'],
        cwd=train_runs.ROOT, PATH=f'{bin_dir}:{env["PATH"]}', GPUS='2', GPUS_PER_NODE='2',
        CPUS_PER_TASK='1', SRUN_ARGS='--exclusive', MASTER_PORT=str(free_port()),
        FAKE_SRUN_RECORD=str(record))

    srun = json.loads(record.read_text())
    assert srun['options'] == {
        '-p': 'debug', '--job-name': 'dyt-test', '--gres': 'gpu:2', '--ntasks': '2',
        '--ntasks-per-node': '2', '--cpus-per-task': '1', '--kill-on-bad-exit': '1',
        '--exclusive': True}
    command = srun['command']
    assert command[:3] == ['python', '-u', str(train_runs.ROOT / 'tools' / 'train.py')]
    assert command[3:] == [str(config), f'--work-dir={work_dir}', '--launcher=slurm',
                           '--no-validate', '--cfg-options', 'train_cfg.max_iters=2']
    assert 'using the gloo backend' in out
    # Two ranks trained the same two iterations; the rate loss is the
    # global one, hence equal on both.
    ranks = [train_runs.read_losses(work_dir, r) for r in range(2)]
    assert sorted(ranks[0]) == sorted(ranks[1]) == [1, 2]
    for it in (1, 2):
        assert ranks[0][it]['loss_rate'] == ranks[1][it]['loss_rate']
    assert (work_dir / 'iter_2.pth').exists()
