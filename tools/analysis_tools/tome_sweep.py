"""Training-free ToMe on a trained dense classifier: accuracy, FLOPs and
speed at several ``r``.

The config's model is rebuilt with a :class:`DyTVisionTransformer` (a dense
one stands in for mmpretrain's ``VisionTransformer``: the same network,
loaded through the same key mapping) and ``token_reduction=dict(type='tome',
r=r)`` for each ``--r`` (0 = the dense model); the checkpoint's backbone and
head weights are loaded into each. Top-1 comes from the config's test set,
GFLOPs per image from the records of those forwards, img/s from the models
timed side by side on one random batch (interleaved, median of the repeats),
the ratio against r=0.

Example (the demo's Fashion-MNIST ViT, ``python tools/demo.py`` first)::

    python tools/analysis_tools/tome_sweep.py \\
        configs/demo/pretrain_vit-6x96-p4_fashion-mnist-seen5.py \\
        work_dirs/demo/pretrain/epoch_3.pth --r 0 1 2 4 6
"""
import argparse
import copy
import os.path as osp

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Training-free ToMe at several r')
    parser.add_argument('config', help='config of the trained dense classifier')
    parser.add_argument('checkpoint', help='its checkpoint (backbone and head)')
    parser.add_argument('--r', type=int, nargs='+', default=[0, 1, 2, 4, 6],
                        help='tokens merged per block, one model each (0 = dense)')
    parser.add_argument('--num-images', type=int, help='test images (default: all)')
    parser.add_argument('--batch-size', type=int, default=64,
                        help='batch of the test forwards and of the timing')
    parser.add_argument('--repeats', type=int, default=5, help='timed repeats')
    parser.add_argument('--threads', type=int,
                        help="torch.set_num_threads (default: torch's, the number of cores)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config} does not exist')
    if args.threads is None:
        import torch
        args.threads = torch.get_num_threads()
    if 0 not in args.r:
        args.r = [0] + args.r  # the dense reference of the ratios
    return args


if __name__ == '__main__':
    parse_args()  # --help and argument errors before the heavy imports below

import torch  # noqa: E402
from mmengine.runner import CheckpointLoader, Runner  # noqa: E402

import mmdyt  # noqa: E402,F401
from mmdyt.analysis import build_model, load_config  # noqa: E402
from mmdyt.analysis.timing import compare_speed  # noqa: E402
from mmdyt.models.backbones.checkpoint import load_vit_checkpoint  # noqa: E402
from mmdyt.models.task_model import find_dyt_backbone  # noqa: E402


def tome_model_cfg(model_cfg, r):
    """``model_cfg`` with a DyT ViT backbone merging ``r`` tokens per block."""
    model_cfg = copy.deepcopy(model_cfg)
    backbone = model_cfg.backbone
    if backbone.type == 'VisionTransformer':
        if model_cfg.type != 'ImageClassifier':
            raise ValueError(f'tome_sweep: an mmpretrain ViT inside {model_cfg.type} is not '
                             'supported, give an ImageClassifier or DyTImageClassifier config')
        model_cfg.type = 'DyTImageClassifier'
        backbone = dict(type='DyTVisionTransformer', arch=backbone.arch,
                        img_size=backbone.get('img_size', 224),
                        patch_size=backbone.get('patch_size', 16), dispatch=None,
                        adapter_dim=None, out_type='cls_token',
                        final_norm=backbone.get('final_norm', True))
    elif backbone.type != 'DyTVisionTransformer':
        raise ValueError(f'tome_sweep: the backbone must be a VisionTransformer or '
                         f'DyTVisionTransformer, got {backbone.type}')
    backbone.update(pretrained=None, token_reduction=dict(type='tome', r=r) if r else None)
    model_cfg.backbone = backbone
    return model_cfg


def build_sweep(cfg, checkpoint, rs):
    """r -> classifier in eval mode with the checkpoint's weights."""
    mmdyt.engine.work_dir.use_weights_only_loaders()  # torch.load(weights_only=True)
    state = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state = state.get('state_dict', state)
    head = {k[len('head.'):]: v for k, v in state.items() if k.startswith('head.')}
    models = {}
    for r in rs:
        sweep_cfg = copy.deepcopy(cfg)
        sweep_cfg.model = tome_model_cfg(cfg.model, r)
        model = build_model(sweep_cfg)
        load_vit_checkpoint(find_dyt_backbone(model), state, prefix='backbone.')
        model.head.load_state_dict(head)
        models[r] = model.eval()
    return models


@torch.no_grad()
def evaluate(models, cfg, num_images=None, batch_size=64):
    """r -> (top-1 in %, GFLOPs per image of what ran) on the test set."""
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg.update(batch_size=batch_size, num_workers=0, persistent_workers=False)
    correct = {r: 0 for r in models}
    flops = {r: 0.0 for r in models}
    seen = 0
    for batch in Runner.build_dataloader(loader_cfg):
        for r, model in models.items():
            data = model.data_preprocessor(batch, False)
            count = len(data['data_samples']) if num_images is None \
                else min(len(data['data_samples']), num_images - seen)
            samples = model.predict(data['inputs'][:count], data['data_samples'][:count])
            correct[r] += sum(int(s.pred_label.item() == s.gt_label.item()) for s in samples)
            flops[r] += sum(s.dyt_flops for s in samples)
        seen += count
        if num_images is not None and seen >= num_images:
            break
    return {r: (100.0 * correct[r] / seen, flops[r] / seen / 1e9) for r in models}


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.cfg_options)
    models = build_sweep(cfg, args.checkpoint, args.r)
    results = evaluate(models, cfg, args.num_images, args.batch_size)
    backbone = find_dyt_backbone(models[0])
    torch.manual_seed(0)
    inputs = torch.randn(args.batch_size, backbone.patch_embed.proj.in_channels,
                         *backbone.img_size)
    speed = compare_speed({f'r={r}': m for r, m in models.items() if r}, models[0], inputs,
                          args.repeats)
    speed['r=0'] = speed.pop('baseline')
    print(f'ToMe without training on {args.checkpoint}: threads {torch.get_num_threads()}, '
          f'batch {args.batch_size}, {args.repeats} repeats interleaved')
    print('| r | top-1 | GFLOPs | img/s | ratio |')
    print('| --- | --- | --- | --- | --- |')
    rows = []
    for r in models:
        top1, gflops = results[r]
        row = speed[f'r={r}']
        rows.append(dict(r=r, top1=top1, gflops=gflops, img_s=row['throughput'],
                         ratio=row['ratio']))
        print(f'| {r} | {top1:.2f} | {gflops:.4f} | {row["throughput"]:.1f} | '
              f'{row["ratio"]:.2f} ({row["ratio_min"]:.2f}-{row["ratio_max"]:.2f}) |')
    return rows


if __name__ == '__main__':
    main()
