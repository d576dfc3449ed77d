"""Helpers of the reliability tests: a tiny VTAB-1K-format task on disk, a
config for it, the training tools run as subprocesses, the losses they
record (``reliability_plugin.LossRecorderHook``)."""
import importlib.util
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

from dataset_writers import write_vtab_task

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / 'tests' / 'data'
TINY_CONFIG = DATA / 'configs' / 'dyt_tiny_vtab.py'


def write_task(root, num_train=16, num_test=4, num_classes=4):
    """A VTAB-1K task folder with ``num_train`` training images (labels
    ``i % num_classes``); returns its path."""
    labels = [i % num_classes for i in range(num_train)]
    return write_vtab_task(str(root), 'tiny', {
        'train800val200': labels,
        'test': labels[:num_test]
    })


def tiny_vtab_options(data_root, task, splits, name):
    """``--cfg-options`` that run a ViT-B/16 VTAB-1K-style config on a tiny
    task: a 12-layer 192-wide ViT on 7x7 patches, one epoch, validation only
    after epoch 10, batches of 2 loaded in-process. ``splits``: {dataloader
    name: VTAB-1K split}; the model's classes are the caller's to set."""
    options = ['model.backbone.arch=t', 'model.backbone.patch_size=32',
               'model.backbone.pretrained=None', 'train_cfg.max_epochs=1',
               'train_cfg.val_interval=10', 'default_hooks.logger.interval=1',
               f'experiment_name={name}']
    for loader, split in splits.items():
        options += [f'{loader}.batch_size=2', f'{loader}.num_workers=0',
                    f'{loader}.persistent_workers=False', f'{loader}.dataset.type=VTAB1k',
                    f'{loader}.dataset.data_root={data_root}', f'{loader}.dataset.task={task}',
                    f'{loader}.dataset.split={split}']
    return options


def write_config(path, task_dir, body=''):
    """A config inheriting :data:`TINY_CONFIG`, reading ``task_dir``, with
    the test hooks and ``body`` appended; returns ``path``."""
    Path(path).write_text(f'''
_base_ = [{str(TINY_CONFIG)!r}]
custom_imports = dict(imports=['mmdyt', 'reliability_plugin'], allow_failed_imports=False)
custom_hooks = [dict(type='RNGStateHook'), dict(type='NaNGuardHook'),
                dict(type='LossRecorderHook')]
train_dataloader = dict(dataset=dict(data_root={str(task_dir)!r}))
val_dataloader = dict(dataset=dict(data_root={str(task_dir)!r}))
test_dataloader = val_dataloader
''' + body)
    return path


def tool_env(**extra):
    """Environment of a tool subprocess: this interpreter's ``python`` and
    ``torchrun`` first on PATH, mmdyt and the test plugin importable, one
    thread per process (CI has two cores)."""
    path = os.pathsep.join([str(ROOT), str(DATA), os.environ.get('PYTHONPATH', '')])
    bin_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ['PATH']])
    return {**os.environ, 'PYTHONPATH': path, 'PATH': bin_path, 'OMP_NUM_THREADS': '1',
            **extra}


def run(cmd, cwd, timeout=300, check=True, **env):
    """Runs ``cmd``; returns stdout + stderr (asserting exit status 0 when
    ``check``)."""
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=tool_env(**env),
                          capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, out[-5000:]
    return proc.returncode, out


def train(config, work_dir, *args, **kwargs):
    """``tools/train.py config --work-dir work_dir args``."""
    return run([sys.executable, ROOT / 'tools' / 'train.py', config, '--work-dir', work_dir,
                *args], cwd=ROOT, **kwargs)


def load_tool(name):
    """The module of ``tools/{name}.py``, e.g. ``load_tool('analysis_tools/vtab_table')``."""
    spec = importlib.util.spec_from_file_location('mmdyt_tool_' + name.replace('/', '_'),
                                                  ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name, argv):
    """``tools/{name}.py argv`` run as ``__main__`` in this process (its
    ``sys.argv`` restored after), e.g. ``run_script('deployment/export_onnx', [...])``."""
    old = sys.argv
    sys.argv = [f'{name.rsplit("/", 1)[-1]}.py'] + [str(a) for a in argv]
    try:
        runpy.run_path(str(ROOT / 'tools' / f'{name}.py'), run_name='__main__')
    finally:
        sys.argv = old


def train_in_process(config, work_dir, *args):
    """``tools/train.py``'s ``main`` in this process (errors raise here)."""
    if str(DATA) not in sys.path:
        sys.path.insert(0, str(DATA))
    load_tool('train').main([str(config), '--work-dir', str(work_dir), *map(str, args)])


def train_on_task(tmp_path, task_dir, *options, extra_args=()):
    """:func:`train_in_process` of a :func:`write_config` config reading
    ``task_dir`` (written to ``tmp_path``), work dir ``tmp_path / 'work'``,
    ``--no-validate``, ``extra_args``, and ``options`` as ``--cfg-options``."""
    config = write_config(tmp_path / 'tiny_task.py', task_dir)
    args = ['--no-validate', *extra_args]
    if options:
        args += ['--cfg-options', *options]
    train_in_process(config, tmp_path / 'work', *args)


def read_losses(work_dir, rank=0):
    """{iteration: {loss name: value}} recorded by one rank."""
    path = Path(work_dir) / f'losses_rank{rank}.jsonl'
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {r.pop('iter'): r for r in records}
