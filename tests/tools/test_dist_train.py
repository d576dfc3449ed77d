"""DDP on CPU (gloo): the rate loss's global mean, no unused parameters in any
DyT / PEFT setting, and ``tools/dist_train.sh`` against a single process."""
import socket
import subprocess
import sys

import pytest
import torch

import train_runs


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_ddp_rate_loss_and_no_unused_parameters():
    """tests/data/ddp_checks.py under torchrun, 2 gloo processes; a timeout
    instead of a hang if a rank dies and leaves the other in a collective."""
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
         '--master_port', str(free_port()), str(train_runs.ROOT / 'tests/data/ddp_checks.py')],
        capture_output=True, text=True, timeout=300, cwd=train_runs.ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for rank in range(2):
        assert f'ddp checks passed on rank {rank}' in result.stdout


@pytest.fixture(scope='module')
def task(tmp_path_factory):
    return train_runs.write_task(tmp_path_factory.mktemp('data'), num_train=32)


NOISE_FREE = '''
custom_hooks.append(dict(type='NoGumbelNoiseHook'))
model = dict(backbone=dict(adapter_dropout=0.0))
train_dataloader.update(batch_size={batch_size})
'''
# Float32 sums in another order (two half batches, gradient all-reduce) are
# all that differs between the two runs.
RTOL = 1e-4


def test_dist_train_matches_single_process(task, tmp_path):
    """``tools/dist_train.sh CONFIG 2`` (torchrun, gloo) with 4 images per
    rank against ``tools/train.py`` with 8: same global batch (the sampler
    gives rank r the shuffled indices r, r + 2, ...), seed and noise-free
    dispatchers, so every iteration's mean loss, the global rate loss and the
    trained weights agree."""
    dist_cfg = train_runs.write_config(tmp_path / 'dist.py', task,
                                       NOISE_FREE.format(batch_size=4))
    single_cfg = train_runs.write_config(tmp_path / 'single.py', task,
                                         NOISE_FREE.format(batch_size=8))
    dist_dir, single_dir = tmp_path / 'dist', tmp_path / 'single'
    _, out = train_runs.run(['bash', train_runs.ROOT / 'tools' / 'dist_train.sh', dist_cfg, '2',
                             '--work-dir', dist_dir, '--no-validate'],
                            cwd=train_runs.ROOT, PORT=str(free_port()))
    assert 'using the gloo backend' in out
    train_runs.train(single_cfg, single_dir, '--no-validate')

    ranks = [train_runs.read_losses(dist_dir, r) for r in range(2)]
    single = train_runs.read_losses(single_dir)
    assert sorted(single) == sorted(ranks[0]) == sorted(ranks[1]) == [1, 2, 3, 4]
    for it, ref in single.items():
        mean_ce = (ranks[0][it]['loss'] + ranks[1][it]['loss']) / 2
        assert mean_ce == pytest.approx(ref['loss'], rel=RTOL), it
        # The rate loss targets the global mean rate: the same on both ranks.
        assert ranks[0][it]['loss_rate'] == ranks[1][it]['loss_rate']
        assert ranks[0][it]['loss_rate'] == pytest.approx(ref['loss_rate'], rel=RTOL, abs=1e-7)

    dist_state, single_state = (
        torch.load(d / 'iter_4.pth', map_location='cpu', weights_only=False)['state_dict']
        for d in (dist_dir, single_dir))
    assert dist_state.keys() == single_state.keys()
    for key, value in single_state.items():
        assert torch.allclose(dist_state[key], value, rtol=RTOL, atol=1e-5), key
