"""Put DyT into an existing mmpretrain / mmseg / mmaction2 config.

    python tools/misc/dyt_config.py their_config.py my_dyt_config.py
    python tools/misc/dyt_config.py \\
        mmpretrain::vision_transformer/vit-base-p16_64xb64_in1k.py my_dyt_vit.py \\
        --pretrained data/pretrained/vit-b16_in21k.npz --fix-norm

writes the converted config (``Config.dump``: one file, no ``_base_``) and
prints every change (``mmdyt.config_conversion.dyt_config``). ``CONFIG`` is a
file or ``PACKAGE::path`` for a config a toolbox ships (under its
``.mim/configs``). ``--cfg-options`` are merged into CONFIG before the
conversion (the toolbox's vocabulary: ``model.backbone.drop_path_rate=0.2``);
``--backbone-options`` are further DyTVisionTransformer arguments
(``adapter_scale=1.0 rel_pos_bias=True``).
"""
import argparse
import importlib.util
import os.path as osp
import sys

DISPATCHES = ('mlp', 'attn', 'attn_mlp', 'layer', 'none')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write the DyT version of an mmpretrain / mmseg / mmaction2 ViT config '
        'and print what changed.')
    parser.add_argument('config', help='the config to convert: a file, or PACKAGE::path for '
                        'a config a toolbox ships, e.g. '
                        'mmseg::vit/vit_deit-b16_upernet_8xb2-80k_ade20k-512x512.py')
    parser.add_argument('out', help='where to write the converted config (.py)')
    parser.add_argument('--dispatch', default='mlp', choices=DISPATCHES,
                        help="DyT variant; 'none': no token dispatch (adapters only, no rate "
                        'loss)')
    parser.add_argument('--adapter-dim', type=int, default=64, help='adapter bottleneck d')
    parser.add_argument('--target-rate', type=float, default=0.5,
                        help='target activation rate of the rate loss')
    parser.add_argument('--rate-loss-weight', type=float, default=2.0)
    parser.add_argument('--num-experts', type=int, default=1,
                        help='adapter experts (> 1: MoE-adapter)')
    parser.add_argument('--pretrained', help="the ViT checkpoint (default: the config's)")
    parser.add_argument('--fix-norm', action='store_true',
                        help="set the data preprocessor's mean / std to what the checkpoint "
                        'expects when they differ (default: a warning)')
    parser.add_argument('--keep-pre-logits', action='store_true',
                        help="keep mmpretrain's VisionTransformerClsHead hidden_dim layer")
    parser.add_argument('--backbone-options', nargs='+', default=None, metavar='KEY=VALUE',
                        help='further DyTVisionTransformer arguments, e.g. adapter_scale=1.0')
    parser.add_argument('--cfg-options', nargs='+', default=None, metavar='KEY=VALUE',
                        help='merged into CONFIG before the conversion (xxx=yyy as in every '
                        'OpenMMLab tool)')
    return parser.parse_args(argv)


def resolve_config(name):
    """The file of ``name``: a path, or ``PACKAGE::path`` under the
    installed package's ``.mim/configs`` (found without importing it)."""
    if '::' in name:
        package, rel = name.split('::', 1)
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f'error: CONFIG {name}: package {package!r} is not installed')
        path = osp.join(list(spec.submodule_search_locations)[0], '.mim', 'configs', rel)
    else:
        path = name
    if not osp.isfile(path):
        where = f' ({path})' if path != name else ''
        raise SystemExit(f'error: CONFIG {name}: no such file{where}')
    return path


def parse_options(values):
    """KEY=VALUE strings -> dict, values parsed as mmengine's DictAction does."""
    from mmengine.config import DictAction
    namespace = argparse.Namespace()
    DictAction(option_strings=[], dest='options')(None, namespace, values or [])
    return getattr(namespace, 'options', {}) or {}


def main(argv=None):
    args = parse_args(argv)
    path = resolve_config(args.config)
    if not args.out.endswith('.py'):
        raise SystemExit(f'error: OUT {args.out}: write a .py config')
    out_dir = osp.dirname(osp.abspath(args.out))
    if not osp.isdir(out_dir):
        raise SystemExit(f'error: OUT {args.out}: no folder {out_dir}')
    cfg_options = parse_options(args.cfg_options)
    backbone_options = parse_options(args.backbone_options)

    # The heavy imports (torch, the toolboxes) only now.
    import warnings

    from mmengine.config import Config

    import mmdyt  # noqa: F401 - compatibility fixes, registries
    from mmdyt.config_conversion import DyTConfigWarning, dyt_config

    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    changes = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DyTConfigWarning)  # printed below with the rest
        new = dyt_config(cfg, dispatch=None if args.dispatch == 'none' else args.dispatch,
                         adapter_dim=args.adapter_dim, target_rate=args.target_rate,
                         pretrained=args.pretrained, num_experts=args.num_experts,
                         rate_loss_weight=args.rate_loss_weight, fix_norm=args.fix_norm,
                         keep_pre_logits=args.keep_pre_logits, changes=changes,
                         **backbone_options)
    new.dump(args.out)
    print(f'{args.config} -> {args.out}: {len(changes)} changes')
    for line in changes:
        print(f'  - {line}')
    warned = sum(line.startswith('WARNING') for line in changes)
    if warned:
        print(f'{warned} warning(s) above: check them before training', file=sys.stderr)
    return new, changes


if __name__ == '__main__':
    main()
