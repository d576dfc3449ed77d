"""DDP on CPU (gloo): the rate loss's global mean, no unused parameters in any
DyT / PEFT setting, and ``tools/dist_train.sh`` against a single process."""
import datetime
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'data'))
import train_runs  # noqa: E402

TINY_ARCH = dict(embed_dims=24, num_layers=2, num_heads=2, feedforward_channels=48)
# Every training setting whose parameters must all receive a gradient in
# every iteration (DDP with find_unused_parameters=False).
SETTINGS = {
    'dyt-mlp': dict(dispatch='mlp', adapter_dim=4),
    'dyt-attn': dict(dispatch='attn', adapter_dim=4),
    'dyt-attn_mlp': dict(dispatch='attn_mlp', adapter_dim=4),
    'dyt-layer': dict(dispatch='layer', adapter_dim=4),
    'dyt-moe': dict(dispatch='mlp', adapter_dim=4, num_experts=3),
    'dyt-vpt': dict(dispatch='mlp', adapter_dim=4, num_prompts=2),
    'dyt-lora': dict(dispatch='mlp', adapter_dim=4, lora_rank=2),
    'dynamic-full': dict(dispatch='mlp', adapter_dim=4, freeze_pretrained=False),
    'adaptformer': dict(dispatch=None, adapter_dim=4),
    'lora': dict(dispatch=None, adapter_dim=None, lora_rank=2),
    'vpt': dict(dispatch=None, adapter_dim=None, num_prompts=2),
    'full': dict(dispatch=None, adapter_dim=None, freeze_pretrained=False),
}


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def no_gumbel_noise():
    """Noise-free dispatchers, so that both ranks and the single process see
    the same masks (the Gumbel draws depend on how the batch is split)."""
    from mmdyt.models.layers import dispatcher
    dispatcher.gumbel_sigmoid = lambda logits, tau: torch.sigmoid(logits / tau)


def build(setting):
    from mmdyt.models.backbones import DyTVisionTransformer
    torch.manual_seed(0)
    return DyTVisionTransformer(arch=TINY_ARCH, img_size=16, patch_size=4, adapter_dropout=0.0,
                                **SETTINGS[setting])


def classifier_like_loss(backbone, out, rate_loss):
    """Mean of the class-token features (the head's input) plus the rate
    loss when the backbone dispatches: the two paths gradients take in a
    DyT classifier."""
    loss = out.pow(2).mean()
    if backbone.dispatchers():
        loss = loss + rate_loss(backbone.masks(), backbone.num_fixed_tokens)
    return loss


def ddp_worker(rank, world_size, port):
    from torch.nn.parallel import DistributedDataParallel as DDP

    from mmdyt.models.losses import ActivationRateLoss
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=120))
    torch.set_num_threads(1)
    no_gumbel_noise()
    rate_loss = ActivationRateLoss(target_rate=0.3)
    images = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    local = images.chunk(world_size)[rank]
    try:
        # Rate loss: forward value = mean over both ranks' masks; gradient
        # after DDP averaging = single-process gradient of the whole batch.
        single, model = build('dyt-mlp'), build('dyt-mlp')
        ddp = DDP(model)
        loss = classifier_like_loss(model, ddp(local)[0], rate_loss)
        loss.backward()
        ref_loss = classifier_like_loss(single, single(images)[0], rate_loss)
        ref_loss.backward()
        patch_masks = torch.cat([m[:, 1:].flatten() for m in single.masks()])
        rate = rate_loss(model.masks(), 1)
        assert torch.allclose(rate, 2.0 * (patch_masks.mean() - 0.3)**2)
        assert torch.allclose(rate, rate_loss(single.masks(), 1))
        for (name, p), q in zip(model.named_parameters(), single.parameters()):
            if p.requires_grad:
                assert torch.allclose(p.grad, q.grad, atol=1e-6, rtol=1e-4), name
        # Every setting: two DDP iterations without find_unused_parameters
        # (an unused parameter fails the second forward).
        for setting in SETTINGS:
            model = build(setting)
            ddp = DDP(model, find_unused_parameters=False)
            optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                                        lr=0.1)
            for _ in range(2):
                optimizer.zero_grad()
                classifier_like_loss(model, ddp(local)[0], rate_loss).backward()
                optimizer.step()
            missing = [n for n, p in model.named_parameters()
                       if p.requires_grad and p.grad is None]
            assert not missing, f'{setting}: no gradient for {missing}'
    finally:
        dist.destroy_process_group()


def test_ddp_rate_loss_and_no_unused_parameters():
    mp.spawn(ddp_worker, args=(2, free_port()), nprocs=2, join=True)


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
