"""Command line tests of ``tools/train.py`` and ``tools/test.py`` on a toy model."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]

TOY_MODULE = '''
import torch
import torch.nn as nn
from mmengine.dataset import BaseDataset
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, METRICS, MODELS


@MODELS.register_module()
class CliToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor', **kwargs):
        out = self.fc(inputs).squeeze(-1)
        if mode == 'loss':
            return dict(loss=((out - labels) ** 2).mean())
        if mode == 'predict':
            return [dict(pred=p, label=l) for p, l in zip(out, labels)]
        return out


@DATASETS.register_module()
class CliToyDataset(BaseDataset):
    def __init__(self, **kwargs):
        super().__init__(serialize_data=False, **kwargs)

    def load_data_list(self):
        g = torch.Generator().manual_seed(0)
        return [dict(inputs=torch.randn(2, generator=g), labels=float(i % 2))
                for i in range(8)]


@METRICS.register_module()
class CliToyMetric(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results += [float((s['pred'] - s['label']) ** 2) for s in data_samples]

    def compute_metrics(self, results):
        return dict(mse=sum(results) / len(results))
'''

CONFIG = '''
default_scope = 'mmengine'
custom_imports = dict(imports=['cli_toy'], allow_failed_imports=False)
model = dict(type='CliToyModel')
_loader = dict(dataset=dict(type='CliToyDataset'), batch_size=4, num_workers=0,
               sampler=dict(type='DefaultSampler', shuffle=False),
               collate_fn=dict(type='default_collate'))
train_dataloader = _loader
val_dataloader = _loader
test_dataloader = _loader
val_evaluator = dict(type='CliToyMetric')
test_evaluator = val_evaluator
train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=1)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, end=1)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1))
env_cfg = dict(dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0)
'''


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp('cli')
    (root / 'cli_toy.py').write_text(TOY_MODULE)
    (root / 'toy_config.py').write_text(CONFIG)
    return root


def run_tool(script, *args, cwd, launcher=None):
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(cwd), str(ROOT)])}
    cmd = [sys.executable, str(ROOT / 'tools' / script), *map(str, args)]
    if launcher:
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=1',
               '--master_port=29517', *cmd[1:], '--launcher', launcher]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.mark.parametrize('script, flags', [
    ('train.py', ['--work-dir', '--cfg-options', '--resume', '--amp', '--auto-scale-lr',
                  '--launcher', '--local_rank', '--local-rank']),
    ('test.py', ['checkpoint', '--work-dir', '--out', '--show-dir', '--cfg-options',
                 '--launcher', '--local_rank', '--local-rank']),
])
def test_help_lists_flags(script, flags):
    out = run_tool(script, '--help', cwd=ROOT)
    for flag in flags:
        assert flag in out
    assert '{none,pytorch,slurm,mpi}' in out


def test_train_resume_and_test(toy):
    work_dir = toy / 'work'
    run_tool('train.py', 'toy_config.py', '--work-dir', work_dir, cwd=toy)
    assert (work_dir / 'epoch_2.pth').exists()

    out = run_tool('train.py', 'toy_config.py', '--work-dir', work_dir, '--resume',
                   '--cfg-options', 'train_cfg.max_epochs=3', cwd=toy)
    assert 'resumed epoch: 2' in out
    assert (work_dir / 'epoch_3.pth').exists()

    out = run_tool('train.py', 'toy_config.py', '--work-dir', toy / 'work2', '--resume',
                   work_dir / 'epoch_2.pth', cwd=toy)
    assert 'resumed epoch: 2' in out

    pkl = toy / 'preds.pkl'
    out = run_tool('test.py', 'toy_config.py', work_dir / 'epoch_3.pth',
                   '--work-dir', work_dir, '--out', pkl, cwd=toy)
    assert 'mse:' in out and pkl.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason='gloo fallback is for CPU-only machines')
def test_pytorch_launcher_falls_back_to_gloo(toy):
    out = run_tool('train.py', 'toy_config.py', '--work-dir', toy / 'dist',
                   '--cfg-options', 'train_cfg.max_epochs=1', cwd=toy, launcher='pytorch')
    assert 'using the gloo backend instead of nccl' in out
    assert (toy / 'dist' / 'epoch_1.pth').exists()


def test_shell_scripts_are_valid_bash():
    for name in ('dist_train.sh', 'dist_test.sh', 'slurm_train.sh', 'slurm_test.sh'):
        path = ROOT / 'tools' / name
        assert os.access(path, os.X_OK), name
        subprocess.run(['bash', '-n', str(path)], check=True)
        assert ('torchrun' if name.startswith('dist') else 'srun') in path.read_text()


@pytest.mark.parametrize('scope, hook, expected', [
    ('mmpretrain', 'VisualizationHook', dict(enable=True, out_dir='vis', interval=1)),
    ('mmaction', 'VisualizationHook', dict(enable=True, out_dir='vis', interval=1)),
    ('mmseg', 'SegVisualizationHook', dict(draw=True, interval=1)),
])
def test_show_dir_enables_the_toolbox_hook(scope, hook, expected):
    import importlib.util

    from mmengine.config import Config
    spec = importlib.util.spec_from_file_location('mmdyt_test_tool', ROOT / 'tools' / 'test.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg = Config(dict(default_scope=scope, visualizer=dict(type='Visualizer'),
                      default_hooks=dict(visualization=dict(type=hook))))
    tool.enable_visualization(cfg, 'vis')
    assert {k: cfg.default_hooks.visualization[k] for k in expected} == expected
    if scope == 'mmseg':
        assert cfg.visualizer.save_dir == 'vis'
