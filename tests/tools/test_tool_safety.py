"""Security and the launch scripts: no code runs from a checkpoint, no
shell or ``eval`` in the package and tools, the distributed scripts need no
``torchrun`` on PATH."""
import os
import pathlib
import re
import subprocess
import sys

import pytest
import torch

import train_runs

ROOT = train_runs.ROOT


class RunsCode:
    """A pickle that, loaded with ``weights_only=False``, creates a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_demo_does_not_run_a_pickled_checkpoint(tmp_path, monkeypatch):
    pytest.importorskip('mlxtend')
    demo = train_runs.load_tool('demo')
    marker = tmp_path / 'code_ran'
    pretrain_dir = tmp_path / 'demo' / 'pretrain'
    pretrain_dir.mkdir(parents=True)
    evil = pretrain_dir / 'epoch_1.pth'
    torch.save({'state_dict': {}, 'payload': RunsCode(str(marker))}, evil)
    (pretrain_dir / 'last_checkpoint').write_text(str(evil))
    monkeypatch.setattr(demo, 'check_fashion_mnist', lambda root: None)
    monkeypatch.setattr(demo, 'run_tool', lambda *args, **kwargs: '')
    with pytest.raises(Exception, match='Weights only load failed|cannot read checkpoint'):
        demo.pretrain(demo.parse_args(['--work-dir', str(tmp_path / 'demo')]))
    assert not marker.exists()


#: Unsafe constructs: name -> regex over a line of Python.
UNSAFE = {
    'weights_only=False': r'weights_only\s*=\s*False',
    'shell=True': r'shell\s*=\s*True',
    'getoutput': r'\bgetoutput\(',
    'os.system': r'\bos\.system\(',
    'pickle.load': r'\bpickle\.loads?\(',
    'eval(': r'(?<![.\w])eval\(',
    'exec(': r'(?<![.\w])exec\(',
    'yaml.load( without a safe loader': r'\byaml\.load\((?![^)]*SafeLoader)',
}
#: (path, construct) -> why that use is safe. Empty today; add an entry,
#: with its reason, only for a use that reads no untrusted input.
ALLOWED = {}


def unsafe_uses(paths):
    """[(path:line, construct)] of every unsafe construct in ``paths``."""
    found = []
    for path in paths:
        for lineno, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
            code = line.split('#', 1)[0]
            relative = str(path.relative_to(ROOT)) if ROOT in path.parents else path.name
            for name, pattern in UNSAFE.items():
                if re.search(pattern, code) and (relative, name) not in ALLOWED:
                    found.append((f'{relative}:{lineno}', name))
    return found


def test_no_unsafe_constructs_in_package_and_tools(tmp_path):
    sources = sorted([*ROOT.glob('mmdyt/**/*.py'), *ROOT.glob('tools/**/*.py')])
    assert len(sources) > 50
    assert unsafe_uses(sources) == []
    # the check finds each construct, and not model.eval() or a safe yaml load
    probe = tmp_path / 'probe.py'
    probe.write_text('\n'.join([
        "torch.load(p, weights_only=False)", "subprocess.run(c, shell=True)",
        "subprocess.getoutput(c)", "os.system(c)", "pickle.load(f)", "eval(text)",
        "exec(text)", "yaml.load(f)", "model.eval()", "yaml.load(f, Loader=yaml.SafeLoader)",
        "x = 1  # eval(text) in a comment"]))
    assert [name for _, name in unsafe_uses([probe])] == list(UNSAFE)


@pytest.mark.parametrize('script, args', [('dist_train.sh', ['cfg.py', '1', '--help']),
                                          ('dist_test.sh', ['cfg.py', 'x.pth', '1', '--help'])])
def test_dist_scripts_need_no_torchrun_on_path(tmp_path, script, args):
    """PATH without the virtual environment (no torchrun, no python with
    torch): the launcher runs with the interpreter the scripts pick."""
    env = dict(os.environ, PATH='/usr/bin:/bin', PYTHON=sys.executable,
               PORT=str(29600 + os.getpid() % 300), OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', str(ROOT / 'tools' / script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'command not found' not in out and '--launcher' in out
