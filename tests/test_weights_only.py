"""No code from a checkpoint runs, even where torch's own default would
unpickle everything: every tool and function of mmdyt that reads a file
passes ``weights_only=True`` to ``torch.load`` itself.

``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` makes ``torch.load`` without an
explicit ``weights_only`` unpickle anything (mmengine 0.10.7's loaders, and
torch < 2.6 always). One subprocess with that environment feeds a checkpoint
whose unpickling would create a marker file (``os.system`` through
``__reduce__``) to each tool / function; none may create its marker, and
each must refuse with an error that names the file.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train_runs

ROOT = Path(__file__).resolve().parents[1]


class RunsCode:
    """Unpickled without ``weights_only``, runs ``touch marker`` (and would
    run anything else)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


#: Run in the subprocess: case name -> Python code calling the tool /
#: function on ``evil`` (the malicious checkpoint of that case), with
#: ``config`` (a tiny DyT classifier config), ``work`` (a fresh directory)
#: and ``safe_base`` (a real ViT state dict file) defined.
CASES = {
    'get_flops.py --checkpoint':
    "load_tool('analysis_tools/get_flops').main([config, '--checkpoint', evil])",
    'export_onnx.py':
    "load_tool('deployment/export_onnx').main([config, evil, '--out', work + '/m.onnx'])",
    'tome_sweep.py':
    "load_tool('analysis_tools/tome_sweep').main([config, evil])",
    'calibrate_exits.py':
    "load_tool('analysis_tools/calibrate_exits').main([config, evil])",
    'benchmark.py --checkpoint':
    "load_tool('analysis_tools/benchmark').main([config, '--checkpoint', evil, "
    "'--repeats', '1'])",
    'mmdyt.analysis.build_model':
    "from mmdyt.analysis import build_model, load_config\n"
    "build_model(load_config(config), checkpoint=evil)",
    'load_vit_checkpoint':
    "from mmdyt.models.backbones.checkpoint import load_vit_checkpoint\n"
    "load_vit_checkpoint(tiny_vit(num_layers=2, dispatch=None, adapter_dim=None), evil)",
    'tuned-only checkpoint over a base file':
    # a real tuned-only state dict, loaded into a model whose base is the file
    "model = tiny_classifier(num_layers=2, backbone=dict(pretrained=safe_base))\n"
    "model.init_weights()\n"
    "state = model.state_dict()\n"
    "tiny_classifier(num_layers=2, backbone=dict(pretrained=evil)).load_state_dict(state)",
    'DyTModel.load_tuned':
    "from mmdyt.api.model import read_tuned\n"
    "read_tuned(evil)",
    'train.py --resume':
    "load_tool('train').main([config, '--work-dir', work, '--resume', evil])",
    'train.py load_from':
    "load_tool('train').main([config, '--work-dir', work, '--cfg-options', "
    "'load_from=' + evil])",
    'test.py':
    "load_tool('test').main([config, evil, '--work-dir', work])",
}

DRIVER = '''
import json, os, sys, traceback
sys.path[:0] = [{root!r} + '/tests/data', {root!r} + '/tests/datasets']
import torch
import mmdyt  # noqa: F401
from mmengine.registry import init_default_scope
from tiny_dyt import tiny_classifier, tiny_vit
from train_runs import load_tool
config, safe_base, tmp = {config!r}, {safe_base!r}, {tmp!r}
cases = json.loads({cases!r})
from mmengine.runner import CheckpointLoader
mmengine_loaders = dict(CheckpointLoader._schemes)  # mmengine's own, torch.load as it is
results = {{}}
# control: this environment makes a torch.load without weights_only run the code
try:
    torch.load(os.path.join(tmp, 'evil_control.pth'))
except Exception:
    pass
results['control'] = os.path.exists(os.path.join(tmp, 'marker_control'))
for i, (name, code) in enumerate(cases.items()):
    evil = os.path.join(tmp, f'evil_{{i}}.pth')
    work = os.path.join(tmp, f'work_{{i}}')
    os.makedirs(work)
    init_default_scope('mmpretrain')
    CheckpointLoader._schemes = dict(mmengine_loaders)  # nothing left by an earlier case
    try:
        exec(code, dict(globals(), evil=evil, work=work))
        results[name] = dict(error=None)
    except BaseException as error:  # SystemExit of a tool too
        results[name] = dict(error=f'{{type(error).__name__}}: {{error}}',
                             trace=traceback.format_exc()[-3000:])
    results[name]['marker'] = os.path.exists(os.path.join(tmp, f'marker_{{i}}'))
print('RESULTS ' + json.dumps(results))
'''


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('weights_only')
    task = train_runs.write_task(tmp / 'data', num_train=4, num_test=2)
    config = train_runs.write_config(tmp / 'tiny.py', task, 'train_cfg = dict(max_iters=1)\n')
    from tiny_dyt import tiny_vit
    safe_base = tmp / 'base.pth'
    torch.save(tiny_vit(num_layers=2, dispatch=None, adapter_dim=None).state_dict(), safe_base)
    for i in [*range(len(CASES)), 'control']:
        torch.save({'meta': {}, 'state_dict': {}, 'payload': RunsCode(tmp / f'marker_{i}')},
                   tmp / f'evil_{i}.pth')
    driver = DRIVER.format(root=str(ROOT), config=str(config), safe_base=str(safe_base),
                           tmp=str(tmp), cases=json.dumps(CASES))
    env = train_runs.tool_env(TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1')
    proc = subprocess.run([sys.executable, '-c', driver], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    line = next((line for line in proc.stdout.splitlines() if line.startswith('RESULTS ')),
                None)
    assert line is not None, out[-5000:]
    return tmp, json.loads(line[len('RESULTS '):])


def test_the_environment_runs_code_from_a_plain_torch_load(results):
    """Control: without ``weights_only=True`` the payload does run here."""
    assert results[1]['control'] is True


@pytest.mark.parametrize('case', list(CASES))
def test_no_code_runs(results, case):
    tmp, found = results
    evil = tmp / f'evil_{list(CASES).index(case)}.pth'
    assert not found[case]['marker'], f'{case} ran code from {evil}'
    assert found[case]['error'] is not None, f'{case} loaded {evil} without an error'


@pytest.mark.parametrize('case', list(CASES))
def test_the_error_names_the_file(results, case):
    tmp, found = results
    evil = str(tmp / f'evil_{list(CASES).index(case)}.pth')
    assert evil in found[case]['error'], found[case].get('trace')


def test_every_torch_load_passes_weights_only_true():
    """``torch.load(`` in the package and the tools names
    ``weights_only=True`` in its call (mmengine's loaders are replaced by
    :func:`mmdyt.engine.work_dir.use_weights_only_loaders`)."""
    calls = []
    for path in sorted([*ROOT.glob('mmdyt/**/*.py'), *ROOT.glob('tools/**/*.py')]):
        text = path.read_text(encoding='utf-8')
        for match in re.finditer(r'\btorch\.load\(', text):
            depth, end = 1, match.end()
            while depth and end < len(text):
                depth += {'(': 1, ')': -1}.get(text[end], 0)
                end += 1
            line = text.count('\n', 0, match.start()) + 1
            calls.append((f'{path.relative_to(ROOT)}:{line}', text[match.start():end]))
    assert calls
    assert [(where, call) for where, call in calls
            if not re.search(r'weights_only\s*=\s*True', call)] == []
