"""Which interpreter ``tools/dist_*.sh`` and ``tools/slurm_*.sh`` run: a copy
of each script outside the checkout (no ``.venv`` beside it), with a
``python`` on PATH that cannot import torch, stops with an error naming
``PYTHON``; ``PYTHON`` or a ``.venv`` beside the scripts is used."""
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = {
    'dist_train.sh': ['cfg.py', '2'],
    'dist_test.sh': ['cfg.py', 'ckpt.pth', '2'],
    'slurm_train.sh': ['part', 'job', 'cfg.py', 'work'],
    'slurm_test.sh': ['part', 'job', 'cfg.py', 'ckpt.pth'],
}
# A python without torch: `-c` probes fail as a bare interpreter's would;
# anything else it runs is recorded.
NO_TORCH = '''#!/bin/sh
if [ "$1" = "-c" ]; then echo "ModuleNotFoundError: No module named 'torch'" >&2; exit 1; fi
echo "no-torch python ran: $*"; exit 1
'''
RECORDER = '''#!/bin/sh
if [ "$1" = "-c" ]; then exit 0; fi
echo "{name} ran: $*"
'''
# The fake srun runs its command (the last arguments, after the options).
SRUN = '''#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in -p) shift 2;; -*) shift;; *) break;; esac; done
exec "$@"
'''


def executable(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def copy(tmp_path):
    """The launch scripts copied to ``tmp/elsewhere/tools``; a PATH whose
    ``python`` cannot import torch (and a fake ``srun``)."""
    tools = tmp_path / 'elsewhere' / 'tools'
    tools.mkdir(parents=True)
    for name in (*SCRIPTS, 'find_python.sh'):
        shutil.copy(ROOT / 'tools' / name, tools / name)
    bin_dir = tmp_path / 'bin'
    executable(bin_dir / 'python', NO_TORCH)
    executable(bin_dir / 'srun', SRUN)
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHON', 'PYTHONPATH')}
    env['PATH'] = f'{bin_dir}:/usr/bin:/bin'
    return tools, env


def launch(tools, name, env):
    proc = subprocess.run(['bash', str(tools / name), *SCRIPTS[name]], env=env,
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize('name', sorted(SCRIPTS))
def test_no_python_with_torch_names_the_python_variable(copy, name):
    tools, env = copy
    code, out = launch(tools, name, env)
    assert code != 0
    assert 'Set PYTHON to the interpreter' in out
    assert 'no-torch python ran' not in out


@pytest.mark.parametrize('name', sorted(SCRIPTS))
def test_python_variable_first_then_the_venv_beside_the_checkout(copy, tmp_path, name):
    tools, env = copy
    executable(tmp_path / 'chosen' / 'python', RECORDER.format(name='PYTHON'))
    code, out = launch(tools, name, {**env, 'PYTHON': str(tmp_path / 'chosen' / 'python')})
    assert code == 0, out
    assert 'PYTHON ran: ' in out
    executable(tools.parent / '.venv' / 'bin' / 'python', RECORDER.format(name='venv'))
    code, out = launch(tools, name, env)
    assert code == 0, out
    assert 'venv ran: ' in out
    script = 'train.py' if 'train' in name else 'test.py'
    assert str(tools / script) in out or f'tools/{script}' in out


def test_python_on_path_that_has_mmdyt_comes_before_the_venv(copy, tmp_path):
    tools, env = copy
    executable(tools.parent / '.venv' / 'bin' / 'python', RECORDER.format(name='venv'))
    executable(tmp_path / 'good' / 'python', RECORDER.format(name='PATH python'))
    code, out = launch(tools, 'dist_train.sh',
                       {**env, 'PATH': f'{tmp_path / "good"}:{env["PATH"]}'})
    assert code == 0, out
    assert 'PATH python ran: -m torch.distributed.run' in out
