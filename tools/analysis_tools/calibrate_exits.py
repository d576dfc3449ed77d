"""Calibrate the exit thresholds of an early-exit model (Dyn-Adapter) to a
FLOPs budget on the validation split, and write them into a new config.

    python tools/analysis_tools/calibrate_exits.py CONFIG CHECKPOINT --budget 0.5

Every validation sample runs every exit once (mergeable PETL modules merged
first, as deployed); thresholds are then chosen so that the mean FLOPs
(blocks, heads, embedding and final norm a sample runs) stay within
``budget`` x the full-depth backbone FLOPs (the same pass without heads):
one per early exit by a greedy search (``--mode per_exit``, default) or the
highest one shared by the early exits (``--mode shared``). The table printed
gives, per exit, the threshold, the share of samples leaving there and their
accuracy. The new config (default: next to the checkpoint,
``<config>_budget50.py``) is the given one with ``model.thresholds`` set;
test it with tools/test.py.
"""
import argparse
import os.path as osp

from mmengine.config import DictAction

#: the choices of --mode: mmdyt.engine.exit_calibration.CALIBRATION_MODES, here so that
#: --help and argument errors come before torch is imported
CALIBRATION_MODES = ('per_exit', 'shared')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Calibrate early-exit thresholds')
    parser.add_argument('config', help='config of an EarlyExitClassifier')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('--budget', type=float, default=0.5,
                        help='mean FLOPs as a fraction of the full backbone, in (0, 1]')
    parser.add_argument('--mode', choices=CALIBRATION_MODES, default='per_exit',
                        help='one threshold per early exit, or one shared by them')
    parser.add_argument('--out', help='new config file (default: next to the checkpoint)')
    parser.add_argument('--no-merge', action='store_true',
                        help='measure with LoRA / RepAdapter unmerged')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, xxx=yyy pairs (e.g. the VTAB task)')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config} does not exist')
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmengine.runner import Runner

    import mmdyt  # noqa: F401
    from mmdyt.analysis import build_model, load_config
    from mmdyt.engine.exit_calibration import calibrate_model_exits, format_exit_table
    from mmdyt.models.petl import merge_petl
    cfg = load_config(args.config, args.cfg_options)
    model = build_model(cfg, args.checkpoint)
    if not hasattr(model, 'run_exits'):
        raise ValueError(f'{args.config}: model {cfg.model.type} has no early exits')
    if not args.no_merge:
        merge_petl(model)
        model.eval()
    thresholds, stats = calibrate_model_exits(
        model, Runner.build_dataloader(cfg.val_dataloader), args.budget, args.mode)
    reference = stats['backbone_flops']

    cfg.model.thresholds = thresholds
    stem = osp.splitext(osp.basename(args.config))[0]
    out = args.out or osp.join(osp.dirname(osp.abspath(args.checkpoint)),
                               f'{stem}_budget{round(args.budget * 100)}.py')
    with open(out, 'w') as f:
        f.write(f'# {stem} with exit thresholds calibrated to {args.budget:.0%} of the '
                f'backbone FLOPs on the val split ({args.mode})\n' + cfg.pretty_text)
    print(f'thresholds: {[round(t, 6) for t in thresholds]}')
    print(f"val accuracy {stats['accuracy']:.2f} (last head only "
          f"{stats['last_head_accuracy']:.2f}), mean GFLOPs {stats['flops'] / 1e9:.4f} = "
          f"{stats['flops'] / reference:.1%} of the backbone ({reference / 1e9:.4f}), "
          f"exit histogram {stats['histogram']}")
    print(format_exit_table(stats['per_exit']))
    print(f'written {out}')
    return thresholds


if __name__ == '__main__':
    main()
