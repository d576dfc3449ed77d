"""Which tokens DyT activates: PNGs of the activated patches per layer and
a plot of the activation rate per layer (DyT paper, Figures 6-9).

Works on cls, seg and video configs (the backbone's stepping API, one
image or frame at a time). Images are resized to the backbone's
``img_size``; a video file (read with decord) gives ``--num-frames`` evenly
spaced frames, each run as an image, as the backbone does for video
(per-frame token sequences). Deactivated
patches are darkened.

Writes into ``--out-dir``: ``{name}_layers.png`` (a grid, one panel per
dispatcher), ``{name}_layer{k}.png`` per dispatcher with ``--per-layer``, and
``activation_rates.png``.

Example::

    python tools/analysis_tools/visualize_tokens.py \
        configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py demo.jpg clip.mp4 \
        --checkpoint dyt.pth --out-dir vis/
"""
import argparse
import math
import os
import os.path as osp

from mmengine.config import DictAction

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mkv', '.webm', '.mov')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Visualize the tokens DyT activates')
    parser.add_argument('config', help='config file')
    parser.add_argument('inputs', nargs='+', help='image or video files')
    parser.add_argument('--checkpoint', help='checkpoint file')
    parser.add_argument('--out-dir', default='token_vis', help='where the PNGs go')
    parser.add_argument('--num-frames', type=int, default=4, help='frames per video')
    parser.add_argument('--per-layer', action='store_true', help='also one PNG per layer')
    parser.add_argument('--dim', type=float, default=0.25,
                        help='brightness left to deactivated patches')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config} does not exist')
    return args


if __name__ == '__main__':
    parse_args()  # --help and argument errors before the heavy imports below

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import mmdyt  # noqa: E402,F401
from mmdyt.analysis import build_model, load_config  # noqa: E402
from mmdyt.models.record import ForwardRecord  # noqa: E402
from mmdyt.models.task_model import find_dyt_backbone  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def read_frames(path, num_frames):
    """An image file -> [(name, (H, W, 3) uint8 RGB)]; a video -> one per
    sampled frame."""
    stem = osp.splitext(osp.basename(path))[0]
    if not osp.isfile(path):
        raise FileNotFoundError(f'no such input file: {path}')
    if path.lower().endswith(VIDEO_EXTENSIONS):
        import decord
        reader = decord.VideoReader(path)
        indices = np.linspace(0, len(reader) - 1, num_frames).round().astype(int)
        frames = reader.get_batch(list(indices)).asnumpy()
        return [(f'{stem}_frame{i}', frame) for i, frame in zip(indices, frames)]
    import mmcv
    return [(stem, mmcv.imread(path, channel_order='rgb'))]


def normalization(cfg):
    """(mean, std) of the config's data preprocessor, RGB, 0-255 scale."""
    pre = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    return (pre.get('mean', [127.5] * 3), pre.get('std', [127.5] * 3))


def to_input(image, size, mean, std):
    """(H, W, 3) uint8 -> resized image (h, w, 3) uint8 and (3, h, w) input."""
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    tensor = F.interpolate(tensor, size=size, mode='bicubic', align_corners=False)
    tensor = tensor.clamp(0, 255)
    resized = tensor[0].permute(1, 2, 0).round().byte().numpy()
    normed = (tensor[0] - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    return resized, normed


def overlay(image, mask, patch_size, dim):
    """Darken the patches whose mask entry is False. mask: (h, w) bool."""
    keep = np.kron(mask.astype(np.float32), np.ones((patch_size, patch_size)))
    scale = dim + (1 - dim) * keep[..., None]
    return (image * scale).astype(np.uint8)


def dispatcher_labels(backbone):
    return [f'layer {i} {part}' for i, block in enumerate(backbone.blocks)
            for part in block.dispatchers]


def save_grid(path, image, masks, labels, patch_size, dim):
    cols = min(6, len(masks))
    rows = math.ceil(len(masks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for ax, mask, label in zip(axes.flat, masks, labels):
        ax.imshow(overlay(image, mask, patch_size, dim))
        ax.set_title(f'{label}: {mask.mean():.2f}', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_rates(path, rates, labels):
    """rates: dict name -> (num_dispatchers,) array."""
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(labels)), 3))
    for name, values in rates.items():
        ax.plot(range(len(values)), values, marker='o', alpha=0.5, label=name)
    mean = np.mean(list(rates.values()), axis=0)
    ax.plot(range(len(mean)), mean, color='k', linewidth=2, label='mean')
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel('activation rate')
    if len(rates) <= 8:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@torch.no_grad()
def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    backbone = find_dyt_backbone(build_model(cfg, args.checkpoint))
    if backbone is None or not backbone.dispatchers():
        raise ValueError(f'{args.config}: the model has no DyT backbone with dispatchers')
    os.makedirs(args.out_dir, exist_ok=True)
    mean, std = normalization(cfg)
    labels = dispatcher_labels(backbone)
    fixed = backbone.num_fixed_tokens
    rates = {}
    for path in args.inputs:
        for name, frame in read_frames(path, args.num_frames):
            image, inputs = to_input(frame, backbone.img_size, mean, std)
            record = ForwardRecord()
            # the stepping API: one image (or frame) through any DyT ViT of
            # cls, seg and video configs alike, whatever its output format
            backbone.run_blocks(backbone.embed(inputs[None], record), record)
            masks = [m[0, fixed:].reshape(record.grid).cpu().numpy().astype(bool)
                     for m in record.masks()]
            rates[name] = np.array([m.mean() for m in masks])
            save_grid(osp.join(args.out_dir, f'{name}_layers.png'), image, masks, labels,
                      backbone.patch_size, args.dim)
            if args.per_layer:
                for k, mask in enumerate(masks):
                    plt.imsave(osp.join(args.out_dir, f'{name}_layer{k}.png'),
                               overlay(image, mask, backbone.patch_size, args.dim))
            print(f'{name}: activation rate {rates[name].mean():.3f} '
                  f'(per layer {np.round(rates[name], 2).tolist()})')
    save_rates(osp.join(args.out_dir, 'activation_rates.png'), rates, labels)
    print(f'PNGs written to {args.out_dir}')


if __name__ == '__main__':
    main()
