"""Tests of :mod:`mmdyt.compat`: each fix solves its upstream problem."""
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import os.path as osp
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

import mmdyt  # noqa: F401
from mmdyt import compat

COMPAT_FILE = compat.__file__
MMCV_LITE = importlib.util.find_spec('mmcv._ext') is None


def run_python(code, **env):
    """Run ``code`` in a fresh interpreter; return the completed process."""
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


LOAD_COMPAT = (f'import importlib.util\n'
               f'spec = importlib.util.spec_from_file_location("compat", {COMPAT_FILE!r})\n'
               f'compat = importlib.util.module_from_spec(spec)\n'
               f'spec.loader.exec_module(compat)\n')


def with_fix(fix, code):
    """``code`` preceded by applying one fix, loaded without ``import mmdyt``."""
    return f'{LOAD_COMPAT}compat.{fix}()\n{code}'


def test_apply_is_idempotent_and_checks_names():
    compat.apply_compat_fixes()
    compat.apply_compat_fixes()
    outcomes = [compat.applied_fixes(), compat.skipped_fixes(), compat.pending_fixes()]
    assert sorted(name for outcome in outcomes for name in outcome) == sorted(compat.FIXES)
    with pytest.raises(KeyError, match='no_such_fix'):
        compat.apply_compat_fixes(skip=['no_such_fix'])


def fake_versions(monkeypatch, **versions):
    """Make ``compat.dist_version`` report ``versions`` (``mmcv_lite`` for mmcv-lite)."""
    versions = {name.replace('_', '-'): v for name, v in versions.items()}
    monkeypatch.setattr(compat, 'dist_version', versions.get)


@pytest.mark.parametrize('versions, why_not', [
    (dict(mmengine='0.10.7', torch='2.6.0+cu124'), None),
    (dict(mmengine='0.10.7', torch='2.7.0a0'), None),
    (dict(mmengine='0.10.6', torch='2.12.1'), None),
    (dict(mmengine='0.10.8', torch='2.12.1'),
     'mmengine 0.10.8 is outside the targeted mmengine<=0.10.7'),
    (dict(mmengine='0.10.7', torch='2.5.1'), 'torch 2.5.1 is outside the targeted torch>=2.6'),
    (dict(mmengine_lite='0.11.0', torch='2.12.1'),
     'mmengine-lite 0.11.0 is outside the targeted mmengine-lite<=0.10.7'),
    (dict(torch='2.12.1'), 'mmengine / mmengine-lite is not installed'),
])
def test_checkpoint_fix_targets(monkeypatch, versions, why_not):
    fake_versions(monkeypatch, **versions)
    assert compat.check_targets(compat.FIXES['checkpoint_safe_globals'])[1] == why_not


@pytest.mark.parametrize('name, versions, in_range', [
    ('mmcv_ops', dict(mmcv_lite='2.1.0'), True),
    ('mmcv_ops', dict(mmcv='2.1.0'), True),
    ('mmcv_ops', dict(mmcv_lite='2.2.0'), False),
    ('mmcv_ops', dict(mmcv='1.7.2'), False),
    ('mmaction_drn', dict(mmaction2='1.2.0'), True),
    ('mmaction_drn', dict(mmaction2='1.2.1'), False),
    ('mmpretrain_image_errors', dict(mmpretrain='1.2.0'), True),
    ('mmpretrain_image_errors', dict(mmpretrain='1.3.0'), False),
])
def test_fix_targets(monkeypatch, name, versions, in_range):
    fake_versions(monkeypatch, **versions)
    assert (compat.check_targets(compat.FIXES[name])[1] is None) == in_range


def test_newer_versions_are_skipped_and_logged(monkeypatch, caplog):
    monkeypatch.setattr(compat, '_applied', {})
    monkeypatch.setattr(compat, '_skipped', {})
    monkeypatch.setattr(compat, '_pending', {})
    fake_versions(monkeypatch, mmcv_lite='2.2.0', mmaction2='1.2.1', mmengine='0.10.8',
                  torch='2.12.1', mmpretrain='1.3.0')
    caplog.set_level(logging.DEBUG, logger='mmdyt')
    compat.apply_compat_fixes()
    compat.apply_compat_fixes()
    assert compat.applied_fixes() == {}
    assert compat.skipped_fixes() == {
        'mmcv_ops': 'mmcv-lite 2.2.0 is outside the targeted mmcv-lite>=2.0,<2.2',
        'mmaction_drn': 'mmaction2 1.2.1 is outside the targeted mmaction2==1.2.0',
        'checkpoint_safe_globals': 'mmengine 0.10.8 is outside the targeted mmengine<=0.10.7',
        'mmpretrain_image_errors': 'mmpretrain 1.3.0 is outside the targeted '
                                   'mmpretrain>=1.0,<=1.2.0'}
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.name == 'mmdyt'] == [
        (logging.DEBUG, f'mmdyt compat fix {name} skipped: {why}')
        for name, why in compat.skipped_fixes().items()]


def test_fix_without_its_problem_is_skipped(monkeypatch):
    importlib.import_module('mmseg')  # what mmcv_ops waits for: it applies at once, if at all
    monkeypatch.setattr(compat, '_applied', {})
    monkeypatch.setattr(compat, '_skipped', {})
    monkeypatch.setattr(compat, '_pending', {})
    fake_versions(monkeypatch, mmcv_lite='2.1.0')
    compat.apply_compat_fixes(skip=['mmaction_drn', 'checkpoint_safe_globals',
                                    'mmpretrain_image_errors'])
    assert compat.skipped_fixes() == {'mmcv_ops': 'its upstream problem is absent'}


#: What the fixes of the toolboxes wait for, imported as a config's modules would.
IMPORT_TOOLBOXES = '''
import importlib.util
for module in ('mmseg.models', 'mmaction.models', 'mmpretrain.datasets'):
    if importlib.util.find_spec(module.split('.')[0]) is not None:
        importlib.import_module(module)
'''


def apply_in_subprocess(fake=None, then=''):
    """Apply all fixes twice in a fresh interpreter, logging at DEBUG to stderr,
    then run ``then`` (e.g. :data:`IMPORT_TOOLBOXES`).

    ``fake`` replaces the installed versions. Returns the process and its
    JSON report: applied, skipped and pending fixes, and which packages were
    imported.
    """
    code = LOAD_COMPAT + (f'compat.dist_version = {fake!r}.get\n' if fake else '') + '''
import json, logging, sys
logging.basicConfig(level=logging.DEBUG, format='%(name)s %(levelname)s %(message)s')
compat.apply_compat_fixes()
compat.apply_compat_fixes()
''' + then + '''
print(json.dumps(dict(applied=compat.applied_fixes(), skipped=compat.skipped_fixes(),
                      pending=compat.pending_fixes(),
                      imported=[m for m in ('mmcv', 'mmaction', 'mmengine', 'mmpretrain', 'mmseg',
                                            'torch') if m in sys.modules])))
'''
    proc = run_python(code, MMDYT_COMPAT_SKIP='')
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(proc.stdout.splitlines()[-1])


def test_out_of_range_fixes_import_nothing():
    proc, report = apply_in_subprocess(
        {'mmcv-lite': '2.2.0', 'mmaction2': '1.2.1', 'mmengine': '0.11.0', 'torch': '2.12.1',
         'mmpretrain': '1.3.0'})
    assert report['applied'] == {} and set(report['skipped']) == set(compat.FIXES)
    assert report['imported'] == []
    assert ('mmdyt DEBUG mmdyt compat fix checkpoint_safe_globals skipped: mmengine 0.11.0'
            in proc.stderr)


def test_applied_fixes_report_versions_and_log_once():
    proc, report = apply_in_subprocess(then=IMPORT_TOOLBOXES)
    assert report['pending'] == {}
    version = importlib.metadata.version
    expected = {
        'checkpoint_safe_globals': {'mmengine': version('mmengine'), 'torch': version('torch')},
        'mmpretrain_image_errors': {'mmpretrain': version('mmpretrain')},
    }
    if MMCV_LITE:
        expected['mmcv_ops'] = {'mmcv-lite': version('mmcv-lite')}
    if DRN_MISSING:
        expected['mmaction_drn'] = {'mmaction2': version('mmaction2')}
    assert {name: info['versions'] for name, info in report['applied'].items()} == expected
    for name, versions in expected.items():
        found = ', '.join(f'{d} {v}' for d, v in versions.items())
        reason = compat.FIXES[name].reason
        line = f'mmdyt INFO mmdyt compat fix {name} applied for {found}: {reason}'
        assert proc.stderr.count(line) == 1, proc.stderr
    outcomes = re.findall(r'compat fix \w+ (?:applied|skipped)', proc.stderr)
    assert sorted(outcomes) == sorted(set(outcomes)) and len(outcomes) == len(compat.FIXES)


def test_toolbox_fixes_wait_for_their_toolbox():
    """Applying imports no toolbox: a fix of a toolbox waits for the import
    of what it patches, then applies right after it, before any module of
    the toolbox that needs it (mmseg.models, mmaction.models)."""
    proc, report = apply_in_subprocess()
    assert not {'mmaction', 'mmpretrain', 'mmseg'} & set(report['imported'])
    toolbox_fixes = {name: fix.after_import for name, fix in compat.FIXES.items()
                     if fix.after_import}
    assert toolbox_fixes == {'mmcv_ops': 'mmseg', 'mmaction_drn': 'mmaction',
                             'mmpretrain_image_errors': 'mmpretrain.datasets'}
    waiting = {name: module for name, module in toolbox_fixes.items()
               if name not in report['skipped']}
    assert report['pending'] == waiting
    for name, module in waiting.items():
        assert f'mmdyt compat fix {name} waits for the import of {module}' in proc.stderr


def test_hooks_keep_the_real_loader_and_leave_meta_path():
    report = json.loads(run_python('''
import json, sys
import mmdyt
from mmdyt import compat
hooked = compat._hooks in sys.meta_path
import mmseg.models, mmaction.models, mmpretrain.datasets
print(json.dumps(dict(
    hooked=hooked, left=compat._hooks in sys.meta_path, pending=compat.pending_fixes(),
    loaders=sorted({type(sys.modules[m].__loader__).__name__
                    for m in ('mmseg', 'mmaction', 'mmpretrain.datasets')} |
                   {type(sys.modules[m].__spec__.loader).__name__
                    for m in ('mmseg', 'mmaction', 'mmpretrain.datasets')}))))
''', MMDYT_COMPAT_SKIP='').stdout.splitlines()[-1])
    assert report['pending'] == {} and not report['left']
    assert report['loaders'] == ['SourceFileLoader']


def test_import_is_quiet():
    proc = run_python('import mmdyt')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '' and 'compat fix' not in proc.stderr


@pytest.mark.skipif(not MMCV_LITE, reason='full mmcv: mmcv.ops imports')
def test_mmseg_needs_mmcv_ops_fix():
    proc = run_python('import mmseg.models')
    assert proc.returncode != 0 and "No module named 'mmcv._ext'" in proc.stderr


MMCV_OPS_CHECK = '''
import sys, torch
import mmseg.models
import mmcv.ops.point_sample
from mmcv.ops import point_sample, sigmoid_focal_loss, CrissCrossAttention
out = point_sample(torch.randn(1, 2, 4, 4), torch.rand(1, 3, 2))
assert out.shape == (1, 2, 3), out.shape
CrissCrossAttention(8)
try:
    sigmoid_focal_loss(torch.zeros(1), torch.zeros(1))
except ImportError as e:
    print(e)
else:
    sys.exit('sigmoid_focal_loss did not raise')
'''


@pytest.mark.skipif(not MMCV_LITE, reason='full mmcv: nothing to fix')
def test_mmcv_ops_fix_makes_mmseg_import():
    proc = run_python(with_fix('fix_mmcv_ops', MMCV_OPS_CHECK))
    assert proc.returncode == 0, proc.stderr
    assert 'mmcv.ops.sigmoid_focal_loss needs the compiled ops' in proc.stdout
    assert 'mmcv==2.1.0' in proc.stdout


def test_mmcv_ops_fix_is_noop_with_full_mmcv():
    importlib.import_module('mmseg')  # what the fix waits for
    import mmcv.ops
    assert isinstance(mmcv.ops, compat._MmcvOpsStandIn) == MMCV_LITE
    compat.fix_mmcv_ops()
    assert sys.modules['mmcv.ops'] is mmcv.ops


def test_mmcv_ops_stand_in_exports():
    ops_dir = osp.join(osp.dirname(importlib.util.find_spec('mmcv').origin), 'ops')
    stand_in = compat._MmcvOpsStandIn(ops_dir)
    names = {'point_sample', 'sigmoid_focal_loss', 'DeformConv2d', 'PSAMask'}
    assert names <= set(stand_in.__all__)
    assert not isinstance(nn.Conv2d(1, 1, 1), stand_in.DeformConv2d)
    with pytest.raises(AttributeError):
        stand_in.no_such_op


DRN_MISSING = importlib.util.find_spec('mmaction') is not None and not osp.isdir(osp.join(
    importlib.util.find_spec('mmaction').submodule_search_locations[0],
    'models', 'localizers', 'drn'))


@pytest.mark.skipif(not DRN_MISSING, reason='mmaction2 ships DRN')
def test_mmaction_needs_drn_fix():
    proc = run_python('import mmaction.models')
    assert proc.returncode != 0 and 'mmaction.models.localizers.drn' in proc.stderr


@pytest.mark.skipif(not DRN_MISSING, reason='mmaction2 ships DRN')
def test_drn_fix_makes_mmaction_import():
    code = '''
import mmaction.models
from mmaction.registry import MODELS
try:
    MODELS.build(dict(type='DRN'))
except ImportError as e:
    print(e)
'''
    proc = run_python(with_fix('fix_mmaction_drn', code), MMDYT_COMPAT_SKIP='')
    assert proc.returncode == 0, proc.stderr
    assert 'DRN is unavailable' in proc.stdout and '#2714' in proc.stdout


def test_mmpretrain_image_errors_fix_names_the_file_and_line(tmp_path):
    """Without the fix an empty image in a CustomDataset list fails inside
    OpenCV without its name; with it the error names the image and the line."""
    (tmp_path / 'a').mkdir()
    (tmp_path / 'a' / '0.png').write_bytes(b'')
    (tmp_path / 'list.txt').write_text('a/0.png 0\n')
    code = f'''
import mmdyt
from mmdyt import compat
from mmpretrain.datasets import CustomDataset
dataset = CustomDataset(data_prefix={str(tmp_path)!r}, ann_file={str(tmp_path / 'list.txt')!r},
                        pipeline=[dict(type='LoadImageFromFile')])
for fix in (None, compat.fix_mmpretrain_image_errors):
    if fix is not None:
        assert fix()
    try:
        dataset[0]
    except Exception as e:
        print(type(e).__name__, e)
'''
    proc = run_python(code, MMDYT_COMPAT_SKIP='mmpretrain_image_errors')
    assert proc.returncode == 0, proc.stderr
    without, with_fix = [line for line in proc.stdout.splitlines() if line.strip()][-2:]
    assert str(tmp_path) not in without and '!buf.empty()' in without
    assert with_fix == (f'ValueError {tmp_path}/list.txt:1: image {tmp_path}/a/0.png '
                        'is empty (0 bytes)')


#: The base config of the few-shot recipes, whose datasets are mmpretrain's CustomDataset.
FEWSHOT = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'cls',
                   'dyn_adapter', '_base_', 'fewshot_bs64.py')


@pytest.mark.parametrize('content, problem', [
    (b'not a png', r"cannot be decoded as an image \(9 bytes, starting b'not a pn'\)"),
    (b'', r'is empty \(0 bytes\)'),
])
@pytest.mark.parametrize('listed', [True, False], ids=['ann_file', 'folder'])
def test_bad_image_in_the_fewshot_custom_dataset_names_file_and_line(
        tmp_path, content, problem, listed):
    """mmpretrain's ``CustomDataset`` of the few-shot configs (test pipeline),
    from an annotation list or from class folders (compat fix
    ``mmpretrain_image_errors``)."""
    import mmcv
    from mmengine.config import Config
    from mmpretrain.registry import DATASETS
    images = tmp_path / 'images'
    for name in 'ab':
        (images / name).mkdir(parents=True)
        for i in range(2):
            mmcv.imwrite(np.zeros((8, 8, 3), np.uint8), str(images / name / f'{i}.png'))
    (images / 'b' / '1.png').write_bytes(content)
    (tmp_path / 'list.txt').write_text(''.join(f'{name}/{i}.png {label}\n'
                                               for label, name in enumerate('ab')
                                               for i in range(2)))
    dataset = Config.fromfile(FEWSHOT).test_dataloader.dataset
    dataset.update(data_root=str(tmp_path), ann_file='list.txt' if listed else '')
    dataset = DATASETS.build(dataset)
    where = f'{tmp_path}/list.txt:4: ' if listed else ''
    with pytest.raises(ValueError, match=rf'^{where}image {images}/b/1.png {problem}$'):
        [dataset[i] for i in range(len(dataset))]


class Toy(nn.Module):
    """A model in mmengine's BaseModel protocol, small enough for a unit test."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.fc(inputs).squeeze(-1)
        if mode == 'loss':
            return dict(loss=((out - labels) ** 2).mean())
        return out


def toy_runner(work_dir, max_epochs, resume=False):
    from mmengine.evaluator import BaseMetric
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class ToyModel(BaseModel):
        def __init__(self):
            super().__init__()
            self.toy = Toy()

        def forward(self, inputs, labels=None, mode='tensor'):
            return self.toy(inputs, labels, mode)

    class ToyMetric(BaseMetric):
        def process(self, data_batch, data_samples):
            self.results.append(1)

        def compute_metrics(self, results):
            return dict(score=np.float64(0.5), count=np.int64(len(results)))

    data = [dict(inputs=torch.randn(2), labels=float(i % 2)) for i in range(8)]
    loader = dict(dataset=data, batch_size=4, collate_fn=dict(type='default_collate'),
                  sampler=dict(type='DefaultSampler', shuffle=False))
    return Runner(
        model=ToyModel(), work_dir=str(work_dir), train_dataloader=loader,
        val_dataloader=loader, val_cfg=dict(), val_evaluator=[ToyMetric()],
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, end=1),
                         dict(type='CosineAnnealingLR', begin=1, end=max_epochs)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1,
                                           save_best='score', rule='greater')),
        resume=resume, randomness=dict(seed=0), default_scope='mmengine')


@pytest.fixture(scope='module')
def resume_ckpt(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('resume')
    toy_runner(work_dir, max_epochs=2).train()
    return work_dir, work_dir / 'epoch_2.pth'


def test_genuine_checkpoint_needs_allow_list(resume_ckpt):
    code = ('from mmengine.runner.checkpoint import _load_checkpoint; '
            f'_load_checkpoint({str(resume_ckpt[1])!r})')
    proc = run_python(code)
    assert proc.returncode != 0 and 'Weights only load failed' in proc.stderr
    proc = run_python(with_fix('fix_checkpoint_safe_globals', code))
    assert proc.returncode == 0, proc.stderr


def test_genuine_checkpoint_resumes(resume_ckpt):
    from mmengine.runner.checkpoint import _load_checkpoint
    work_dir, ckpt = resume_ckpt
    checkpoint = _load_checkpoint(str(ckpt), map_location='cpu')
    assert {'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'} <= set(checkpoint)
    assert isinstance(checkpoint['message_hub']['runtime_info']['best_score'], np.floating)
    runner = toy_runner(work_dir, max_epochs=3, resume=True)
    runner.train()
    assert runner.epoch == 3
    assert runner.message_hub.get_scalar('train/loss').mean() >= 0


class Payload:
    """Writes a file when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


class GetattrPayload:
    """Tries to reach a non-statistics attribute through the allow-listed getattr."""

    def __reduce__(self):
        from mmengine.logging.history_buffer import HistoryBuffer
        return getattr, (HistoryBuffer, '__init__')


@pytest.mark.parametrize('payload', ['system', 'getattr'])
def test_malicious_checkpoint_is_refused(tmp_path, payload):
    from mmengine.runner.checkpoint import _load_checkpoint
    marker = tmp_path / 'pwned'
    evil = Payload(marker) if payload == 'system' else GetattrPayload()
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, meta=dict(evil=evil)), path)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()
