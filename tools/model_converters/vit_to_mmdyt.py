"""Convert a pretrained ViT checkpoint to mmdyt's backbone keys.

Reads an mmpretrain ``VisionTransformer`` checkpoint, a timm ``vit_*`` state
dict (``.pth`` / ``.bin`` / ``.safetensors``), an original ImageNet-21k
``.npz`` or a Hub repo (``hf-hub:<org>/<name>``), checks it against the given
arch and patch size, and writes the ViT weights under mmdyt's (= timm's) key
names, ready for ``DyTVisionTransformer(pretrained=...)`` (see
mmdyt/models/backbones/checkpoint.py for the key mapping).

The output format follows DST's extension:

* ``.npz``: numpy arrays, no pickle. This is what the configs read: the ViT
  configs name ``data/pretrained/vit-b16_in21k.npz`` (ViT-L/16:
  ``data/pretrained/vit-l16_in21k.npz``), so writing there needs no config
  change. DST defaults to ``data/pretrained/vit-<arch><patch>_in21k.npz``.
* ``.safetensors``: no pickle either (give it with
  ``--cfg-options model.backbone.pretrained=<file>``).
* ``.pth`` / ``.pt``: ``torch.save({'state_dict': ..., 'meta': ...})``.

Every config also reads the sources above as they are (an original ``.npz``
copied to ``data/pretrained/vit-b16_in21k.npz`` needs no conversion):
converting checks a file once and keeps only the ViT weights, pickle-free.

Examples:
    # timm's copy of the original ImageNet-21k ViT-B/16 -> the file the configs read
    python tools/model_converters/vit_to_mmdyt.py hf-hub:timm/vit_base_patch16_224.orig_in21k
    # ViT-L/16, from a downloaded file
    python tools/model_converters/vit_to_mmdyt.py model.safetensors \\
        data/pretrained/vit-l16_in21k.npz --arch l
"""
import argparse
import os
import sys

#: Output extensions and what writes them.
FORMATS = ('.npz', '.safetensors', '.pth', '.pt')


def default_dst(arch, patch_size):
    """The path the configs read for this arch and patch size."""
    return os.path.join('data', 'pretrained', f'vit-{arch}{patch_size}_in21k.npz')


def parse_args(argv=None):
    description, _, details = __doc__.partition('\n\n')
    parser = argparse.ArgumentParser(description=description, epilog=details,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='mmpretrain / timm .pth / .bin / .safetensors, original '
                        '.npz or hf-hub:<org>/<name>')
    parser.add_argument('dst', nargs='?',
                        help='output file; its extension picks the format: .npz (what the '
                        'configs read), .safetensors, .pth or .pt (default: '
                        'data/pretrained/vit-<arch><patch>_in21k.npz, e.g. '
                        'data/pretrained/vit-b16_in21k.npz)')
    parser.add_argument('--arch', default='b', help="'t', 's', 'b' or 'l'")
    parser.add_argument('--patch-size', type=int, default=16)
    parser.add_argument('--img-size', type=int, default=224)
    args = parser.parse_args(argv)
    if args.dst is None:
        args.dst = default_dst(args.arch, args.patch_size)
    if not args.dst.endswith(FORMATS):
        parser.error(f'dst {args.dst!r} must end with one of {", ".join(FORMATS)} '
                     '(the extension picks the output format)')
    if os.path.exists(args.dst) and os.path.exists(args.src) \
            and os.path.samefile(args.src, args.dst):
        parser.error(f'dst {args.dst!r} is the source file: write the conversion elsewhere')
    return args


if __name__ == '__main__':
    parse_args(sys.argv[1:])  # --help and argument errors before the heavy imports below

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mmdyt.models.backbones import DyTVisionTransformer, load_vit_checkpoint  # noqa: E402


def save(state, dst, src):
    """Write ``state`` (name -> tensor) to ``dst`` in the format its
    extension names, through a temporary file (a failed write leaves no
    partial ``dst``)."""
    state = {key: value.detach().cpu().contiguous() for key, value in state.items()}
    tmp = f'{dst}.tmp'
    if os.path.dirname(dst):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        if dst.endswith('.npz'):
            with open(tmp, 'wb') as file:  # a file object: numpy adds no extension
                np.savez(file, **{key: value.numpy() for key, value in state.items()})
        elif dst.endswith('.safetensors'):
            try:
                from safetensors.torch import save_file
            except ImportError as error:
                raise SystemExit('writing .safetensors needs the safetensors package '
                                 '(pip install safetensors)') from error
            save_file(state, tmp, metadata={'format': 'pt', 'converted_from': str(src)})
        else:
            torch.save({'state_dict': state, 'meta': {'converted_from': str(src)}}, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv=None):
    args = parse_args(argv)
    vit = DyTVisionTransformer(arch=args.arch, img_size=args.img_size,
                               patch_size=args.patch_size, dispatch=None,
                               adapter_dim=None)
    load_vit_checkpoint(vit, args.src)
    state = vit.state_dict()
    save(state, args.dst, args.src)
    print(f'wrote {args.dst}: {len(state)} tensors')


if __name__ == '__main__':
    main(sys.argv[1:])
