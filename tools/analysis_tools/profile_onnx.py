"""Where the kernel time of an exported DyT model goes in ONNX Runtime,
against its dense baseline.

Both models are built and exported as ``benchmark.py --runtime onnxruntime``
does (the baseline: mmpretrain's ViT of the same arch for a classifier, the
same segmentor / recognizer with a dense backbone otherwise; the skipping
path kept), the gates forced to ``--force-rate`` on the batch, and each graph
run in an ONNX Runtime session with the benchmark's options and profiling
on: one warm-up run, then ``--runs`` profiled ones. The node kernel times of
the JSON trace (the warm-up's dropped) are averaged per run, summed by op
type (after ORT's fusions) and grouped into one markdown table, ms per run
and % of the kernel time, one column per model; ``--top N`` lists the N
slowest nodes of each model.

Example (the profile of docs/deployment.md)::

    python tools/analysis_tools/profile_onnx.py \
        configs/cls/dyt/dyt-layer-r0.5_vit-b16_cifar100.py \
        --batch-size 16 --force-rate 0.5 --runs 3 --threads 2
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import tempfile
from collections import defaultdict

from mmengine.config import DictAction

#: Row label -> the ONNX / ORT op types it sums; the rest goes to 'other'.
OP_GROUPS = {
    'MatMul / Gemm (linear layers)': ('MatMul', 'Gemm', 'FusedGemm'),
    'attention (FusedMatMul, Softmax)': ('FusedMatMul', 'Softmax'),
    'Transpose / Split / Slice / Reshape / Concat': (
        'Transpose', 'Split', 'Slice', 'Reshape', 'Concat', 'Squeeze', 'Unsqueeze',
        'Expand'),
    'elementwise (Add, Mul, Gelu, BiasGelu, LayerNorm)': (
        'Add', 'Mul', 'Gelu', 'BiasGelu', 'LayerNormalization', 'SkipLayerNormalization',
        'Div', 'Sub'),
    'dispatch: NonZero / Gather / GatherND / ScatterND': (
        'NonZero', 'Gather', 'GatherND', 'ScatterND'),
    'padding zeros (ConstantOfShape)': ('ConstantOfShape', ),
    'masks: Where / Cast / Not / And / compare': (
        'Where', 'Cast', 'Not', 'And', 'Less', 'GreaterOrEqual', 'Equal', 'Min', 'Clip',
        'CumSum', 'Range', 'Mod', 'ReduceMax'),
    'NaN / inf spread (IsNaN, IsInf, ReduceMin / ReduceSum)': (
        'IsNaN', 'IsInf', 'ReduceMin', 'ReduceSum'),
}
OTHER = 'other'
KERNEL = '_kernel_time'
NEEDS_ONNXRUNTIME = ('profile_onnx.py runs the exported graphs in ONNX Runtime: '
                     'pip install onnxruntime')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='ONNX Runtime profile of a DyT model and its dense baseline, by op type')
    parser.add_argument('config', help='config of the DyT model')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint of the model')
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--force-rate', type=float,
                        help='set the gates so that this fraction of the patch tokens is '
                        'active in every layer (default: the gates as they are)')
    parser.add_argument('--runs', type=int, default=3,
                        help='profiled runs per model, after one warm-up run')
    parser.add_argument('--threads', type=int, default=2, help='ONNX Runtime intra-op threads')
    parser.add_argument('--top', type=int, default=0, help='list the N slowest nodes per model')
    parser.add_argument('--work-dir', help='where the .onnx files and the ORT traces go '
                        '(default: a temporary directory)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the model config, key=value')
    args = parser.parse_args(argv)
    if args.runs < 1 or args.batch_size < 1:
        parser.error('--runs and --batch-size must be >= 1')
    if importlib.util.find_spec('onnxruntime') is None:
        raise ImportError(NEEDS_ONNXRUNTIME)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config} does not exist')
    return args


if __name__ == '__main__':
    parse_args()  # --help and argument errors before the heavy imports below

import torch  # noqa: E402
from benchmark import default_baseline  # noqa: E402

import mmdyt  # noqa: E402,F401
from mmdyt.analysis import build_model, force_activation_rate, load_config  # noqa: E402
from mmdyt.analysis.builder import input_shape  # noqa: E402
from mmdyt.deploy.onnx import OnnxRuntimeModel, with_gate_biases  # noqa: E402
from mmdyt.deploy.runtime import InferenceRuntime  # noqa: E402
from mmdyt.models.task_model import backbone_inputs, find_dyt_backbone  # noqa: E402


def aggregate_profile(events):
    """Node kernel times of an ORT profile, per run, the first run (warm-up)
    dropped.

    Args:
        events (list[dict]): the JSON trace of ``session.end_profiling()``:
            'model_run' events (one per ``run``) and 'Node' events named
            ``<node>_kernel_time`` with ``args['op_name']``; 'dur' / 'ts' in us.

    Returns:
        dict: 'runs' (profiled runs), 'ops' (op type -> ms per run),
        'counts' (op type -> nodes per run), 'nodes' (node -> (op type, ms
        per run)).
    """
    model_runs = sorted((e for e in events if e.get('name') == 'model_run'),
                        key=lambda e: e['ts'])
    if len(model_runs) < 2:
        raise ValueError(f'the profile has {len(model_runs)} model runs; it needs the '
                         'warm-up and at least one more')
    warmup_end = model_runs[0]['ts'] + model_runs[0]['dur']
    runs = len(model_runs) - 1
    ops, counts, nodes = defaultdict(float), defaultdict(int), {}
    for event in events:
        if (event.get('cat') != 'Node' or not event['name'].endswith(KERNEL)
                or event['ts'] < warmup_end):
            continue
        op, name = event['args']['op_name'], event['name'][:-len(KERNEL)]
        ops[op] += event['dur'] / 1e3 / runs
        counts[op] += 1
        nodes[name] = (op, nodes.get(name, (op, 0.0))[1] + event['dur'] / 1e3 / runs)
    return dict(runs=runs, ops=dict(ops), counts={op: n / runs for op, n in counts.items()},
                nodes=nodes)


def group_times(ops):
    """Op type -> ms (``aggregate_profile``'s 'ops') summed into the rows of
    :data:`OP_GROUPS` plus 'other'; None for a row no op of which ran."""
    grouped = {}
    for label, members in OP_GROUPS.items():
        times = [ops[op] for op in members if op in ops]
        grouped[label] = sum(times) if times else None
    grouped_ops = {op for members in OP_GROUPS.values() for op in members}
    rest = [ms for op, ms in ops.items() if op not in grouped_ops]
    grouped[OTHER] = sum(rest) if rest else None
    return grouped


def cell(ms, total):
    """'12.34 ms (5.6 %)' of ``total`` ms, '-' when ``ms`` is None."""
    return '-' if ms is None else f'{ms:.2f} ms ({100 * ms / total:.1f} %)'


def profile_table(profiles):
    """Markdown lines of the op groups, one column per model.

    Args:
        profiles (dict[str, dict]): model name -> ``aggregate_profile``.
    """
    grouped = {name: group_times(p['ops']) for name, p in profiles.items()}
    totals = {name: sum(p['ops'].values()) for name, p in profiles.items()}
    lines = ['| op types (after ORT\'s fusions), ms per run | ' + ' | '.join(profiles) + ' |',
             '| --- |' + ' --- |' * len(profiles)]
    for label in (*OP_GROUPS, OTHER):
        cells = [cell(grouped[name][label], totals[name]) for name in profiles]
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    lines.append('| kernels total | ' + ' | '.join(f'{totals[n]:.2f} ms' for n in profiles) +
                 ' |')
    return lines


def op_lines(profiles):
    """One line per model: its op types by time, nodes per run and ms."""
    return [f'{name} op types: ' + ', '.join(
        f'{op} x{p["counts"][op]:g} {ms:.2f} ms'
        for op, ms in sorted(p['ops'].items(), key=lambda item: -item[1]))
            for name, p in profiles.items()]


def top_nodes(profiles, top):
    """Markdown lines of the ``top`` slowest nodes of every model."""
    lines = ['| model | node | op type | ms per run |', '| --- | --- | --- | --- |']
    for name, p in profiles.items():
        ranked = sorted(p['nodes'].items(), key=lambda item: -item[1][1])[:top]
        lines += [f'| {name} | {node} | {op} | {ms:.2f} |' for node, (op, ms) in ranked]
    return lines


def profile_session(runtime_model, inputs, runs):
    """``aggregate_profile`` of one warm-up and ``runs`` runs of an
    ``OnnxRuntimeModel`` built with a ``profile_prefix``."""
    for _ in range(runs + 1):
        runtime_model(inputs)
    with open(runtime_model.session.end_profiling()) as f:
        return aggregate_profile(json.load(f))


def build_models(config, checkpoint, cfg_options):
    """(cfg, DyT model, dense baseline, DyT backbone) in eval mode on the CPU;
    what the checkpoint leaves out initialized from seed 0."""
    cfg = load_config(config, cfg_options)
    torch.manual_seed(0)
    model = build_model(cfg, checkpoint, 'cpu')
    backbone = find_dyt_backbone(model)
    if backbone is None or not backbone.dispatchers():
        raise ValueError(f'{config}: no DyTVisionTransformer backbone with dispatchers; '
                         'profile_onnx.py profiles the skipping path of a DyT model')
    return cfg, model, default_baseline(config, cfg_options, model, 'cpu')[0], backbone


def profile(args, work_dir):
    cfg, model, baseline, backbone = build_models(args.config, args.checkpoint,
                                                  args.cfg_options)
    shape = input_shape(None, backbone, cfg)
    models = dict(model=model, baseline=baseline)
    runtime = InferenceRuntime(models, 'onnxruntime', shape=shape, threads=args.threads,
                               directory=work_dir)
    print('\n'.join(runtime.lines))
    torch.manual_seed(0)
    inputs = torch.randn(args.batch_size, *shape)
    if args.force_rate is not None:
        rates = force_activation_rate(backbone, args.force_rate,
                                      backbone_inputs(backbone, inputs))
        print(f'forced activation rates {rates.mean().item():.3f} (per layer '
              f'{rates.min().item():.3f}-{rates.max().item():.3f})')
    profiles = {}
    for name, module in models.items():
        runtime_model = OnnxRuntimeModel(with_gate_biases(runtime.graphs[name], module),
                                         args.threads, profile_prefix=osp.join(work_dir, name))
        profiles[name] = profile_session(runtime_model, inputs, args.runs)
    print(f'\nbatch {args.batch_size}, input {shape}, one warm-up run dropped, '
          f'{args.runs} profiled runs, node kernel times averaged per run')
    print('\n'.join(profile_table(profiles)))
    print('\n'.join(op_lines(profiles)))
    if args.top:
        print(f'\n{args.top} slowest nodes per model')
        print('\n'.join(top_nodes(profiles, args.top)))


def main(argv=None):
    args = parse_args(argv)
    try:
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise ImportError(NEEDS_ONNXRUNTIME) from error
    torch.set_num_threads(args.threads)
    if args.work_dir:
        os.makedirs(args.work_dir, exist_ok=True)
        profile(args, args.work_dir)
    else:
        with tempfile.TemporaryDirectory() as directory:
            profile(args, directory)


if __name__ == '__main__':
    main()
