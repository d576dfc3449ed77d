"""Calibration of the early-exit thresholds of Dyn-Adapter to a FLOPs
budget (paper Sec. 3.4), on what :func:`collect_exits` gathers from a
dataloader; used by :class:`~mmdyt.engine.hooks.ExitCalibrationHook` and
``tools/analysis_tools/calibrate_exits.py``.

Two modes: ``'per_exit'`` (default, :func:`calibrate_per_exit`), one
threshold per early exit found by a greedy search, and ``'shared'``
(:func:`calibrate_thresholds`), one threshold for all early exits.
"""
import torch

from ..models.heads.early_exit import first_exit


def calibrate_thresholds(confidences, cum_flops, budget_flops):
    """The highest threshold, shared by all early exits, whose mean FLOPs
    stay within a budget.

    Lowering a shared threshold can only move each sample's exit earlier, so
    the mean FLOPs fall monotonically with it; a bisection over the observed
    confidences finds the largest one that meets the budget.

    Args:
        confidences (Tensor): (N, S) max softmax probability per exit.
        cum_flops (Tensor): (N, S) multiply-adds of a sample leaving at each
            exit (everything it ran up to and including that head).
        budget_flops (float): allowed mean multiply-adds per sample.

    Returns:
        list[float]: S thresholds (the last, ignored, is 0.0).

    Raises:
        ValueError: the budget is below the cost of leaving at the first exit.
    """
    def mean_flops(t):
        exits = first_exit(confidences, [t] * (confidences.shape[1] - 1) + [0.0])
        return cum_flops.gather(1, exits[:, None]).double().mean().item()

    candidates = torch.unique(torch.cat([confidences[:, :-1].flatten().cpu(),
                                         torch.tensor([0.0, 1.0])])).tolist()
    if mean_flops(0.0) > budget_flops:
        raise ValueError(f'budget of {budget_flops / 1e9:.3f} GFLOPs is below the cost of '
                         f'exiting at the first head ({mean_flops(0.0) / 1e9:.3f} GFLOPs)')
    low, high = 0, len(candidates) - 1  # candidates[low] meets the budget
    while low < high:
        mid = (low + high + 1) // 2
        if mean_flops(candidates[mid]) <= budget_flops:
            low = mid
        else:
            high = mid - 1
    return [candidates[low]] * (confidences.shape[1] - 1) + [0.0]


CALIBRATION_MODES = ('per_exit', 'shared')


def _evaluate(confidences, correct, cum_flops, thresholds):
    """(mean FLOPs, accuracy) of the exit rule under ``thresholds``."""
    exits = first_exit(confidences, thresholds)[:, None]
    return (cum_flops.gather(1, exits).double().mean().item(),
            correct.gather(1, exits).double().mean().item())


def calibrate_per_exit(confidences, correct, cum_flops, budget_flops, num_candidates=64):
    """One threshold per early exit whose mean FLOPs stay within a budget.

    Greedy descent from "every exit disabled" (all thresholds 1.0): each
    step lowers the threshold of one early exit to its next candidate (the
    exit's observed confidences, at most ``num_candidates`` quantiles),
    choosing the move that loses the least accuracy per FLOP saved (ties:
    the one that saves most), until the mean FLOPs meet the budget.
    Thresholds only fall along the way, so a larger budget stops earlier on
    the same path: the thresholds are monotone in the budget.

    Args:
        confidences (Tensor): (N, S) max softmax probability per exit.
        correct (Tensor): (N, S) bool, the exit's prediction is right.
        cum_flops (Tensor): (N, S) multiply-adds of leaving at each exit.
        budget_flops (float): allowed mean multiply-adds per sample.
        num_candidates (int): threshold candidates per exit.

    Returns:
        list[float]: S thresholds (the last, ignored, is 0.0).

    Raises:
        ValueError: the budget is below the cost of leaving at the first exit.
    """
    num_exits = confidences.shape[1]
    floor, _ = _evaluate(confidences, correct, cum_flops, [0.0] * num_exits)
    if floor > budget_flops:
        raise ValueError(f'budget of {budget_flops / 1e9:.3f} GFLOPs is below the cost of '
                         f'exiting at the first head ({floor / 1e9:.3f} GFLOPs)')
    levels = torch.linspace(1, 0, num_candidates, dtype=torch.float64)
    candidates = [sorted(set(torch.quantile(confidences[:, j].double().cpu(), levels).tolist())
                         | {0.0}, reverse=True) for j in range(num_exits - 1)]
    thresholds = [1.0] * (num_exits - 1) + [0.0]
    position = [-1] * (num_exits - 1)  # index into candidates; -1 = 1.0
    flops, accuracy = _evaluate(confidences, correct, cum_flops, thresholds)
    while flops > budget_flops:
        best = None
        for j in range(num_exits - 1):
            if position[j] + 1 >= len(candidates[j]):
                continue
            trial = list(thresholds)
            trial[j] = candidates[j][position[j] + 1]
            trial_flops, trial_accuracy = _evaluate(confidences, correct, cum_flops, trial)
            saved, lost = flops - trial_flops, accuracy - trial_accuracy
            score = (lost / saved if saved > 0 else float('inf'), -saved)
            if best is None or score < best[0]:
                best = (score, j, trial, trial_flops, trial_accuracy)
        _, j, thresholds, flops, accuracy = best
        position[j] += 1
    return thresholds


@torch.no_grad()
def collect_exits(model, dataloader):
    """Confidences, correctness and cumulative FLOPs of every exit of an
    early-exit model (eval mode; :class:`~mmdyt.models.early_exit.EarlyExitMixin`)
    over a dataloader, one row per unit (image, or clip of a video view).

    Returns:
        tuple[Tensor]: (N, S) confidences, (N, S) bool correct, (N, S)
        float64 FLOPs of leaving at each exit, (N,) full-backbone FLOPs.
    """
    confidences, correct, flops, backbone_flops = [], [], [], []
    for data in dataloader:
        data = model.data_preprocessor(data, False)
        exits, record = model.run_exits(data['inputs'])
        backbone_flops.append(model.backbone.flops(record))
        target = torch.cat([s.gt_label for s in data['data_samples']]).cpu()
        num_rows = exits[0][1].shape[0]
        target = target.repeat_interleave(num_rows // len(target))  # views of a video
        probs = [logits.softmax(-1).cpu() for _, logits, _ in exits]
        confidences.append(torch.stack([p.max(-1).values for p in probs], 1))
        correct.append(torch.stack([p.argmax(-1) == target for p in probs], 1))
        flops.append(torch.stack([f.cpu() for _, _, f in exits], 1))
    return (torch.cat(confidences), torch.cat(correct), torch.cat(flops),
            torch.cat(backbone_flops))


def exit_summary(confidences, correct, flops, thresholds):
    """Accuracy (%), mean FLOPs, the exit histogram and, per exit, the share
    of samples leaving there and their accuracy (%, None where none left)
    under ``thresholds``."""
    exits = first_exit(confidences, thresholds)
    rows = torch.arange(len(exits))
    right = correct[rows, exits].double()
    histogram = torch.bincount(exits, minlength=confidences.shape[1])
    per_exit = [dict(threshold=float(thresholds[j]), share=(exits == j).double().mean().item(),
                     accuracy=100 * right[exits == j].mean().item() if histogram[j] else None)
                for j in range(confidences.shape[1])]
    return (100 * right.mean().item(), flops[rows, exits].mean().item(), histogram.tolist(),
            per_exit)


def format_exit_table(per_exit):
    """The per-exit rows of :func:`exit_summary` as a printable table."""
    lines = ['exit  threshold  share   accuracy']
    for j, row in enumerate(per_exit):
        accuracy = '-' if row['accuracy'] is None else f"{row['accuracy']:.2f}"
        threshold = 'last' if j == len(per_exit) - 1 else f"{row['threshold']:.4f}"
        lines.append(f"{j:<5} {threshold:>9}  {row['share']:6.1%}  {accuracy:>8}")
    return '\n'.join(lines)


def calibrate_model_exits(model, dataloader, budget, mode='per_exit'):
    """Thresholds that keep ``model``'s mean FLOPs on ``dataloader`` within
    ``budget`` x its full-depth backbone FLOPs.

    Args:
        mode (str): 'per_exit' (:func:`calibrate_per_exit`) or 'shared'
            (:func:`calibrate_thresholds`).

    Returns:
        tuple[list[float], dict]: the thresholds and what they give on that
        data: ``accuracy`` (%), ``last_head_accuracy``, ``flops`` (mean),
        ``backbone_flops`` (mean, full depth, no heads), ``histogram`` and
        ``per_exit`` (threshold, share, accuracy per exit).
    """
    if not 0 < budget <= 1:
        raise ValueError(f'budget must be in (0, 1], got {budget}')
    if mode not in CALIBRATION_MODES:
        raise ValueError(f'calibration mode must be one of {CALIBRATION_MODES}, got {mode!r}')
    confidences, correct, flops, backbone_flops = collect_exits(model, dataloader)
    reference = backbone_flops.mean().item()
    if mode == 'shared':
        thresholds = calibrate_thresholds(confidences, flops, budget * reference)
    else:
        thresholds = calibrate_per_exit(confidences, correct, flops, budget * reference)
    accuracy, mean_flops, histogram, per_exit = exit_summary(confidences, correct, flops,
                                                             thresholds)
    return thresholds, dict(accuracy=accuracy, flops=mean_flops, backbone_flops=reference,
                            histogram=histogram, per_exit=per_exit,
                            last_head_accuracy=100 * correct[:, -1].double().mean().item())
