"""Convert a pretrained ViT checkpoint to mmdyt's backbone keys.

Reads an mmpretrain ``VisionTransformer`` checkpoint, a timm ``vit_*``
state dict or an original ImageNet-21k ``.npz`` file, checks it against the
given arch and patch size, and writes a ``.pth`` whose keys load into
``DyTVisionTransformer`` as they are (see mmdyt/models/backbones/checkpoint.py
for the key mapping).

Example:
    python tools/model_converters/vit_to_mmdyt.py \
        ViT-B_16.npz data/pretrained/vit-b16_in21k.pth --arch b --patch-size 16
"""
import argparse

import torch

from mmdyt.models.backbones import DyTVisionTransformer, load_vit_checkpoint


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='mmpretrain / timm .pth or original .npz')
    parser.add_argument('dst', help='output .pth')
    parser.add_argument('--arch', default='b', help="'t', 's', 'b' or 'l'")
    parser.add_argument('--patch-size', type=int, default=16)
    parser.add_argument('--img-size', type=int, default=224)
    return parser.parse_args()


def main():
    args = parse_args()
    vit = DyTVisionTransformer(arch=args.arch, img_size=args.img_size,
                               patch_size=args.patch_size, dispatch=None,
                               adapter_dim=None)
    load_vit_checkpoint(vit, args.src)
    torch.save({'state_dict': vit.state_dict(), 'meta': {'converted_from': args.src}},
               args.dst)
    print(f'wrote {args.dst}: {len(vit.state_dict())} tensors')


if __name__ == '__main__':
    main()
