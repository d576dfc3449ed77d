"""Calibrate the exit thresholds of an early-exit model (Dyn-Adapter) to a
FLOPs budget on the validation split, and write them into a new config.

    python tools/analysis_tools/calibrate_exits.py CONFIG CHECKPOINT --budget 0.5

Every validation sample runs every exit once (mergeable PETL modules merged
first, as deployed); a threshold shared by the early exits is then chosen as
the highest one whose mean FLOPs (blocks, heads, embedding and final norm a
sample runs) stay within ``budget`` x the full-depth backbone FLOPs (the same
pass without heads). The new config (default: next to the checkpoint,
``<config>_budget50.py``) is the given one with ``model.thresholds`` set;
test it with tools/test.py.
"""
import argparse
import os.path as osp

import mmdyt  # noqa: F401
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner, load_checkpoint

from mmdyt.models.heads.early_exit import calibrate_thresholds, first_exit
from mmdyt.models.petl import merge_petl


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Calibrate early-exit thresholds')
    parser.add_argument('config', help='config of an EarlyExitClassifier')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('--budget', type=float, default=0.5,
                        help='mean FLOPs as a fraction of the full backbone, in (0, 1]')
    parser.add_argument('--out', help='new config file (default: next to the checkpoint)')
    parser.add_argument('--no-merge', action='store_true',
                        help='measure with LoRA / RepAdapter unmerged')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, xxx=yyy pairs (e.g. the VTAB task)')
    return parser.parse_args(argv)


@torch.no_grad()
def collect_exits(model, dataloader):
    """Confidences, correctness and cumulative FLOPs of every exit.

    Returns:
        tuple[Tensor]: (N, S) confidences, (N, S) bool correct, (N, S)
        float64 FLOPs of leaving at each exit, (N,) full-backbone FLOPs.
    """
    heads_flops = sum(head.flops() for head in model.heads)
    confidences, correct, flops = [], [], []
    for data in dataloader:
        data = model.data_preprocessor(data, False)
        exits, _ = model.run_exits(data['inputs'])
        target = torch.cat([s.gt_label for s in data['data_samples']]).cpu()
        probs = [logits.softmax(-1).cpu() for _, logits, _ in exits]
        confidences.append(torch.stack([p.max(-1).values for p in probs], 1))
        correct.append(torch.stack([p.argmax(-1) == target for p in probs], 1))
        flops.append(torch.stack([f.cpu() for _, _, f in exits], 1))
    flops = torch.cat(flops)
    return torch.cat(confidences), torch.cat(correct), flops, flops[:, -1] - heads_flops


def summary(confidences, correct, flops, thresholds):
    """Accuracy (%), mean FLOPs and the exit histogram under ``thresholds``."""
    exits = first_exit(confidences, thresholds)
    rows = torch.arange(len(exits))
    histogram = torch.bincount(exits, minlength=confidences.shape[1])
    return (100 * correct[rows, exits].double().mean().item(),
            flops[rows, exits].mean().item(), histogram.tolist())


def main(argv=None):
    args = parse_args(argv)
    if not 0 < args.budget <= 1:
        raise ValueError(f'--budget must be in (0, 1], got {args.budget}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:  # as the Runner does
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    if not hasattr(model, 'run_exits'):
        raise ValueError(f'{args.config}: model {cfg.model.type} has no early exits')
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    if not args.no_merge:
        merge_petl(model)
    model.eval()
    confidences, correct, flops, backbone_flops = collect_exits(
        model, Runner.build_dataloader(cfg.val_dataloader))
    reference = backbone_flops.mean().item()
    thresholds = calibrate_thresholds(confidences, flops, args.budget * reference)
    accuracy, mean_flops, histogram = summary(confidences, correct, flops, thresholds)
    full_accuracy = 100 * correct[:, -1].double().mean().item()

    cfg.model.thresholds = thresholds
    stem = osp.splitext(osp.basename(args.config))[0]
    out = args.out or osp.join(osp.dirname(osp.abspath(args.checkpoint)),
                               f'{stem}_budget{round(args.budget * 100)}.py')
    with open(out, 'w') as f:
        f.write(f'# {stem} with exit thresholds calibrated to {args.budget:.0%} of the '
                f'backbone FLOPs on the val split\n' + cfg.pretty_text)
    print(f'thresholds: {[round(t, 6) for t in thresholds]}')
    print(f'val accuracy {accuracy:.2f} (last head only {full_accuracy:.2f}), '
          f'mean GFLOPs {mean_flops / 1e9:.4f} = {mean_flops / reference:.1%} of the '
          f'backbone ({reference / 1e9:.4f}), exit histogram {histogram}')
    print(f'written {out}')
    return thresholds


if __name__ == '__main__':
    main()
