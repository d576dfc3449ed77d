"""FLOPs actually computed per image (or per video) by a model with a DyT
backbone, averaged over real test samples.

The backbone runs in eval mode on the skipping path and counts only the
tokens it computed (attention matmuls and LayerNorms included); the rest of
the model (necks, heads) is counted by mmengine's ``FlopAnalyzer``. One
multiply-add is one FLOP (fvcore). ``--convention paper`` counts the backbone
as the Dyn-Adapter paper's tables do (linear layers and patch embedding only:
16.8 G for ViT-B/16, mmdyt's 17.58 G), for comparing those tables column by
column. Without the config's test data, random input of ``--shape`` is
used, and the output says so.

Example::

    python tools/analysis_tools/get_flops.py \
        configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py --checkpoint dyt.pth --num-images 64
"""
import argparse
import copy
import inspect
import os.path as osp

from mmengine.config import DictAction

#: the choices of --convention: mmdyt.models.flops.FLOPS_CONVENTIONS, here so that --help
#: and argument errors come before torch is imported
FLOPS_CONVENTIONS = ('mmdyt', 'paper')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='FLOPs actually computed by a DyT model')
    parser.add_argument('config', help='config file')
    parser.add_argument('--checkpoint', help='checkpoint file (default: random weights)')
    parser.add_argument('--num-images', type=int, default=8,
                        help='test samples (images or videos) to average over')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--shape', type=int, nargs='+',
                        help='one preprocessed sample for random input when the test set '
                        'is absent: C H W (or H W), or e.g. clips C T H W for video')
    parser.add_argument('--force-rate', type=float,
                        help='set the gates so that this fraction of the patch tokens of the '
                        'first batch is active in every layer (as benchmark.py does)')
    parser.add_argument('--convention', choices=FLOPS_CONVENTIONS, default='mmdyt',
                        help="how the backbone is counted: 'mmdyt' (attention matmuls and "
                        "LayerNorms included) or 'paper' (Dyn-Adapter's tables: linear "
                        'layers and patch embedding only)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config} does not exist')
    return args


if __name__ == '__main__':
    parse_args()  # --help and argument errors before the heavy imports below

import torch  # noqa: E402
from mmengine.registry import DATASETS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmdyt  # noqa: E402,F401
from mmdyt.analysis import (build_model, count_parameters, force_activation_rate,  # noqa: E402
                            load_config, measure_flops)
from mmdyt.models.flops import flops_convention  # noqa: E402
from mmdyt.models.task_model import find_dyt_backbone  # noqa: E402
from mmdyt.models.token_reduction import token_counts  # noqa: E402


def test_batches(cfg, model, num_samples, batch_size):
    """Preprocessed input batches from the config's test dataloader.

    Raises whatever building the dataset raises (e.g. FileNotFoundError)."""
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg.update(batch_size=batch_size, num_workers=0, persistent_workers=False)
    with DATASETS.switch_scope_and_registry(None) as registry:
        dataset_cls = registry.get(loader_cfg.dataset.type)
    if dataset_cls and 'download' in inspect.signature(dataset_cls).parameters:
        loader_cfg.dataset.download = False  # measure what is there, fetch nothing
    loader = Runner.build_dataloader(loader_cfg)
    seen = 0
    for batch in loader:
        inputs = model.data_preprocessor(batch, False)['inputs']
        inputs = inputs[:num_samples - seen]
        yield inputs
        seen += inputs.shape[0]
        if seen >= num_samples:
            return


def random_batches(shape, num_samples, batch_size):
    torch.manual_seed(0)
    for start in range(0, num_samples, batch_size):
        yield torch.randn(min(batch_size, num_samples - start), *shape)


def sample_shape(args, backbone):
    if not args.shape:
        return (3, ) + tuple(backbone.img_size)
    return tuple(args.shape) if len(args.shape) != 2 else (3, ) + tuple(args.shape)


def dispatcher_names(backbone):
    return [f'backbone.block{i}.{part}' for i, block in enumerate(backbone.blocks)
            for part in block.dispatchers]


def main(argv=None):
    args = parse_args(argv)
    if args.num_images < 1:
        raise ValueError(f'--num-images must be >= 1, got {args.num_images}')
    cfg = load_config(args.config, args.cfg_options)
    model = build_model(cfg, args.checkpoint)
    backbone = find_dyt_backbone(model)
    if backbone is None:
        raise ValueError(f'{args.config}: the model has no DyTVisionTransformer backbone')
    try:
        batches = test_batches(cfg, model, args.num_images, args.batch_size)
        first = next(batches)
        source = f'{args.num_images} samples of the test set'
    except Exception as error:  # no data on disk, or no test_dataloader
        shape = sample_shape(args, backbone)
        batches = random_batches(shape, args.num_images, args.batch_size)
        first = next(batches)
        source = (f'random input {shape} x {args.num_images} (test set unavailable: '
                  f'{type(error).__name__}: {str(error).splitlines()[0][:120]})')
    if args.force_rate is not None:
        force_activation_rate(backbone, args.force_rate, first)
        source += f'; gates set to activate {args.force_rate} of the first batch'

    totals, count = None, 0
    for inputs in [first, *batches]:
        with flops_convention(args.convention):
            result = measure_flops(model, inputs)
        n = inputs.shape[0]
        weighted = dict(total=result['total'] * n, backbone=result['backbone'] * n,
                        rest=result['rest'] * n, rates=result['rates'] * n,
                        **{k: v * n for k, v in result['breakdown'].items()})
        totals = weighted if totals is None else {k: totals[k] + weighted[k] for k in totals}
        count += n
    mean = {k: v / count for k, v in totals.items()}

    trainable, total = count_parameters(model)
    print(f'Input: {source}')
    print('Per layer (GFLOPs per sample: per video for video; activation rate of the patch '
          'tokens):')
    rates = dict(zip(dispatcher_names(backbone), mean['rates'].tolist()))
    for name, value in mean.items():
        if name in ('total', 'backbone', 'rest', 'rates'):
            continue
        rate = ', '.join(f'{k.rsplit(".", 1)[1]} {v:.3f}' for k, v in rates.items()
                         if k.rsplit('.', 1)[0] == name)
        print(f'  {name:<24} {value / 1e9:8.4f}' + (f'   rate {rate}' if rate else ''))
    if getattr(backbone, 'token_reduction', None) is not None:
        print('Tokens per sample by block (entering / attention / MLP):')
        print('  ' + ', '.join(f'{i}: {n}/{attn}/{mlp}'
                               for i, n, attn, mlp in token_counts(result['record'])))
    if rates:
        print(f'Activation rate: {mean["rates"].mean().item():.4f} (mean over '
              f'{len(rates)} dispatchers)')
    print(f'Params: {total / 1e6:.3f} M total, {trainable / 1e6:.3f} M trainable')
    views = first.shape[1] if first.ndim == 6 else 1  # video: (videos, views, C, T, H, W)
    unit = f'per view ({views} views per video, as efficiency/gflops of tools/test.py)' \
        if views > 1 else 'per sample'
    print(f'FLOPs ({args.convention} convention): {mean["total"] / views / 1e9:.3f} G {unit} '
          f'({mean["total"] / views:.0f} multiply-adds; backbone '
          f'{mean["backbone"] / views / 1e9:.3f} G, rest {mean["rest"] / views / 1e9:.4f} G'
          + (f'; {mean["total"] / 1e9:.3f} G per video)' if views > 1 else ')'))


if __name__ == '__main__':
    main()
