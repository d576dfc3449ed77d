"""TensorBoard logging works with the installed stack, and the seg and
video configs log per-layer rates like the cls ones."""
from pathlib import Path

import pytest
from mmengine.config import Config

import train_runs

ROOT = Path(__file__).resolve().parents[2]


def leaf_configs(task):
    return sorted(p for p in (ROOT / 'configs' / task).rglob('*.py') if '_base_' not in p.parts)


@pytest.mark.parametrize('task', ['seg', 'video'])
def test_seg_and_video_configs_with_dispatchers_log_rates(task):
    configs = leaf_configs(task)
    assert configs
    missing = []
    for path in configs:
        cfg = Config.fromfile(str(path))
        if cfg.model.backbone.get('dispatch', 'mlp') is None:
            continue  # no dispatchers (Dyn-Adapter, PETL baselines): nothing to log
        hooks = [hook['type'] for hook in cfg.get('custom_hooks', [])]
        if 'ActivationLoggerHook' not in hooks:
            missing.append(str(path.relative_to(ROOT)))
    assert missing == []


def test_tensorboard_backend_gets_the_rates(tmp_path):
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    task = train_runs.write_task(tmp_path / 'data', num_train=8)
    config = train_runs.write_config(tmp_path / 'tb.py', task, '''
train_cfg = dict(max_iters=2)
custom_hooks = [dict(type='ActivationLoggerHook')]
visualizer = dict(type='UniversalVisualizer', vis_backends=[
    dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])
''')
    train_runs.train_in_process(config, tmp_path / 'work', '--no-validate')
    events = list((tmp_path / 'work').rglob('events.out.tfevents.*'))
    assert events
    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    tags = set(accumulator.Tags()['scalars'])
    assert {'rate_layer0', 'rate_layer1', 'activation_rate', 'gflops', 'loss_rate'} <= tags
