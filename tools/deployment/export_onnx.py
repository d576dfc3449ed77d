"""Export a DyT model to ONNX with its token skipping intact, and check it.

The graph selects each dispatcher's active tokens at run time (``NonZero`` /
``Gather`` / ``ScatterND`` add, traced by ``torch.export`` with data-dependent
sizes); ``--masked`` exports the masked path instead (every token computed,
labelled as not skipping), ``--capacity C`` capacity mode (a fixed
``ceil(C * N)`` tokens per sample, static shapes). The graph's input is the
preprocessed batch ``inputs`` (B, 3, H, W), for a video config the clips
(B, views, 3, T, H, W); its outputs the model's ``tensor`` outputs (logits
for a classifier or segmentor, the class scores of every view for a
recognizer).

After writing the file the tool runs it in ONNX Runtime against PyTorch on
inputs of several batch sizes and on gate settings that turn every token on,
off, or half of them on (patterns unlike the export example's), and exits
with an error above ``--tolerance`` (1e-4). ``--no-check`` skips that.

Example::

    python tools/deployment/export_onnx.py \
        configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py dyt.pth --out dyt.onnx --dynamic-batch
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export a DyT model to ONNX (skipping kept)')
    parser.add_argument('config', help='config of the model')
    parser.add_argument('checkpoint', help="checkpoint to export ('none': the config's "
                        'initial weights)')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--dynamic-batch', action='store_true',
                        help='symbolic batch size (else the graph takes --batch-size)')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='batch of a fixed-batch export (default 1)')
    parser.add_argument('--opset', type=int,
                        help='ONNX opset (default: mmdyt.deploy.onnx.DEFAULT_OPSET)')
    parser.add_argument('--shape', type=int, nargs='+',
                        help="one preprocessed sample, C H W (default: 3 and the backbone's "
                        "img_size; for a video config views C T H W, default one view of the "
                        "test pipeline's clip_len frames)")
    parser.add_argument('--masked', action='store_true',
                        help='export the masked path (NOT skipping: every token computed)')
    parser.add_argument('--capacity', type=float,
                        help='capacity mode: ceil(C * N) tokens per sample and dispatcher, '
                        'static shapes')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest |ONNX Runtime - PyTorch| the check accepts')
    parser.add_argument('--no-check', action='store_true', help='skip the ONNX Runtime check')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    args = parser.parse_args(argv)
    if args.masked and args.capacity is not None:
        parser.error('--masked and --capacity are two different exports: choose one')
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config} does not exist')
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch

    import mmdyt  # noqa: F401
    from mmdyt.analysis import build_model, load_config
    from mmdyt.analysis.builder import input_shape
    from mmdyt.deploy.onnx import DEFAULT_OPSET, ExportCheckError, check_onnx, export_onnx
    from mmdyt.models.task_model import find_dyt_backbone
    options = dict(args.cfg_options or {})
    if args.capacity is not None:
        options['model.backbone.capacity'] = args.capacity
    cfg = load_config(args.config, options)
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    model = build_model(cfg, checkpoint)
    backbone = find_dyt_backbone(model)
    try:
        shape = input_shape(args.shape, backbone, cfg)
    except ValueError as error:
        raise ValueError(f'{args.config}: {error} (--shape)') from None
    batch = 2 if args.dynamic_batch else args.batch_size
    example = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(0))
    report = export_onnx(model, args.out, example, dynamic_batch=args.dynamic_batch,
                         opset=DEFAULT_OPSET if args.opset is None else args.opset,
                         masked=args.masked)
    print(f'exported {report}')
    if args.no_check:
        print('not checked in ONNX Runtime (--no-check)')
        return
    sizes = (1, 3, 8) if args.dynamic_batch else (batch, )
    try:
        results = check_onnx(model, args.out, shape, sizes, args.tolerance)
    except ExportCheckError as error:
        sys.exit(f'check FAILED: {error}')
    for result in results:
        print(f'check: {result}')
    print(f'check passed: ONNX Runtime matches PyTorch within {args.tolerance} on '
          f'{len(results)} inputs')


if __name__ == '__main__':
    main()
