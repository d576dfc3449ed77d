"""DDP checks run by torchrun with 2 gloo processes (tests/tools/test_dist_train.py):
the rate loss's global mean and gradients, and no unused parameters in any
DyT / PEFT setting. Prints ``ddp checks passed on rank R`` at the end."""
import datetime
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from mmdyt.models.backbones import DyTVisionTransformer
from mmdyt.models.layers import dispatcher
from mmdyt.models.losses import ActivationRateLoss
from mmdyt.models.record import ForwardRecord
from tiny_dyt import tiny_arch

#: Half the tiny ViT's width, on 16x16 images with 4x4 patches.
TINY_ARCH = tiny_arch(num_layers=2, embed_dims=24, num_heads=2, feedforward_channels=48)
# Every training setting whose parameters must all receive a gradient in
# every iteration (DDP with find_unused_parameters=False).
SETTINGS = {
    'dyt-mlp': dict(dispatch='mlp', adapter_dim=4),
    'dyt-attn': dict(dispatch='attn', adapter_dim=4),
    'dyt-attn_mlp': dict(dispatch='attn_mlp', adapter_dim=4),
    'dyt-layer': dict(dispatch='layer', adapter_dim=4),
    'dyt-moe': dict(dispatch='mlp', adapter_dim=4, num_experts=3),
    'dyt-vpt': dict(dispatch='mlp', adapter_dim=4, num_prompts=2),
    'dyt-lora': dict(dispatch='mlp', adapter_dim=4, petl=dict(type='lora', rank=2)),
    'dynamic-full': dict(dispatch='mlp', adapter_dim=4, freeze_pretrained=False),
    'adaptformer': dict(dispatch=None, adapter_dim=4),
    'lora': dict(dispatch=None, adapter_dim=None, petl=dict(type='lora', rank=2)),
    'vpt': dict(dispatch=None, adapter_dim=None, num_prompts=2),
    'full': dict(dispatch=None, adapter_dim=None, freeze_pretrained=False),
}


def no_gumbel_noise():
    """Noise-free dispatchers, so that both ranks and the single process see
    the same masks (the Gumbel draws depend on how the batch is split)."""
    dispatcher.gumbel_sigmoid = lambda logits, tau: torch.sigmoid(logits / tau)


def build(setting):
    torch.manual_seed(0)
    return DyTVisionTransformer(arch=TINY_ARCH, img_size=16, patch_size=4, adapter_dropout=0.0,
                                **SETTINGS[setting])


def classifier_like_loss(model, images, rate_loss):
    """Mean of the class-token features (the head's input) plus the rate
    loss when the backbone dispatches: the two paths gradients take in a
    DyT classifier. ``model`` is the backbone or its DDP wrapper. Returns
    the loss and the forward's record."""
    record = ForwardRecord()
    loss = model(images, record=record)[0].pow(2).mean()
    if record.dispatcher_names:
        loss = loss + rate_loss(record.masks(), record.num_fixed_tokens)
    return loss, record


def main():
    rank, world_size = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    dist.init_process_group('gloo', timeout=datetime.timedelta(seconds=120))
    torch.set_num_threads(1)
    no_gumbel_noise()
    rate_loss = ActivationRateLoss(target_rate=0.3)
    images = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    local = images.chunk(world_size)[rank]
    # Rate loss: forward value = mean over both ranks' masks; gradient
    # after DDP averaging = single-process gradient of the whole batch.
    single, model = build('dyt-mlp'), build('dyt-mlp')
    ddp = DDP(model)
    loss, record = classifier_like_loss(ddp, local, rate_loss)
    loss.backward()
    ref_loss, ref_record = classifier_like_loss(single, images, rate_loss)
    ref_loss.backward()
    patch_masks = torch.cat([m[:, 1:].flatten() for m in ref_record.masks()])
    rate = rate_loss(record.masks(), 1)
    assert torch.allclose(rate, 2.0 * (patch_masks.mean() - 0.3)**2)
    assert torch.allclose(rate, rate_loss(ref_record.masks(), 1))
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
            classifier_like_loss(ddp, local, rate_loss)[0].backward()
            optimizer.step()
        missing = [n for n, p in model.named_parameters()
                   if p.requires_grad and p.grad is None]
        assert not missing, f'{setting}: no gradient for {missing}'
    dist.barrier()
    print(f'ddp checks passed on rank {rank}', flush=True)


if __name__ == '__main__':
    main()
    # Leave without gloo's teardown: with torch 2.12 it sometimes aborts
    # (SIGABRT) or hangs in destroy_process_group once the peer has gone,
    # after every check above has passed.
    os._exit(0)
