"""Calibration of the early-exit thresholds of Dyn-Adapter to a FLOPs
budget (paper Sec. 3.4), on what :func:`collect_exits` gathers from a
dataloader; used by :class:`~mmdyt.engine.hooks.ExitCalibrationHook` and
``tools/analysis_tools/calibrate_exits.py``."""
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


@torch.no_grad()
def collect_exits(model, dataloader):
    """Confidences, correctness and cumulative FLOPs of every exit of an
    early-exit classifier (eval mode; anything with ``data_preprocessor``,
    ``heads`` and ``run_exits``) over a dataloader.

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


def exit_summary(confidences, correct, flops, thresholds):
    """Accuracy (%), mean FLOPs and the exit histogram under ``thresholds``."""
    exits = first_exit(confidences, thresholds)
    rows = torch.arange(len(exits))
    histogram = torch.bincount(exits, minlength=confidences.shape[1])
    return (100 * correct[rows, exits].double().mean().item(),
            flops[rows, exits].mean().item(), histogram.tolist())


def calibrate_model_exits(model, dataloader, budget):
    """Thresholds that keep ``model``'s mean FLOPs on ``dataloader`` within
    ``budget`` x its full-depth backbone FLOPs.

    Returns:
        tuple[list[float], dict]: the thresholds and what they give on that
        data: ``accuracy`` (%), ``last_head_accuracy``, ``flops`` (mean),
        ``backbone_flops`` (mean, full depth, no heads), ``histogram``.
    """
    if not 0 < budget <= 1:
        raise ValueError(f'budget must be in (0, 1], got {budget}')
    confidences, correct, flops, backbone_flops = collect_exits(model, dataloader)
    reference = backbone_flops.mean().item()
    thresholds = calibrate_thresholds(confidences, flops, budget * reference)
    accuracy, mean_flops, histogram = exit_summary(confidences, correct, flops, thresholds)
    return thresholds, dict(accuracy=accuracy, flops=mean_flops, backbone_flops=reference,
                            histogram=histogram,
                            last_head_accuracy=100 * correct[:, -1].double().mean().item())
