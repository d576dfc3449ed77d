"""Speed of a DyT model against a dense baseline, measured in one process.

Inference (default): throughput and latency of ``tensor`` forwards on a
random batch, the model and the baseline interleaved after warm-up, several
repeats; prints the median, the spread and the ratio (baseline seconds /
model seconds, > 1 = the model is faster). The default baseline compares
like with like: for a classifier mmpretrain's own ``VisionTransformer`` of
the same arch, for a segmentor or recognizer the same config with a dense
backbone (``dispatch=None, adapter_dim=None``; necks and heads on both
sides). Video configs take one clip of ``clip_len`` frames per sample. Both models run
aten's kernels unless ``--fuse-cpu`` applies ``mmdyt.deploy.fuse_for_cpu``
to both (oneDNN linear layers, GELU fused), so the ratio always compares
skipping against dense on equal kernels.

Kernels (``--kernels``): aten's ``F.linear`` against oneDNN's inner product on
the linear layers of the config's ViT block, at the token counts of each
batch size with all tokens and with ``--force-rate`` of the patch tokens,
and the kernel each call gets after ``--fuse-cpu``.

Comparison (``--compare CONFIG ...``): the config and every further one
timed side by side in one process against the dense baseline (same kernels,
interleaved, median of the repeats), one table per batch size: method,
backbone GFLOPs per image of what ran, trainable backbone parameters, img/s
(spread of the repeats) and ratio (dense time / method time, per-repeat
range); with several batch sizes (by default 1 4 16 on the CPU, 1 4 16 64
128 on cuda) a last table gives img/s by batch size for every method, the
latency sweep of Dyn-Adapter's Table 2. ``--force-rate`` sets the gates of
the DyT models among them. An early-exit model (Dyn-Adapter) is timed in its
real dynamic inference at the thresholds of its config (those
``calibrate_exits.py`` writes; give ``--checkpoint`` for the first config),
its exit histogram on the timed batch printed; LoRA / RepAdapter layers are
merged first, as deployed. The configs are all of one task; the baseline is
that of the default mode for the first config (for seg / video the same
segmentor / recognizer with a dense backbone), GFLOPs are the backbone's.

Every mode takes classification, segmentation and video configs: video
inputs are one clip of ``clip_len`` frames per sample, the kernels are timed
at the frame tokens of a clip. An early-exit recognizer has no dense
recognizer in its config to compare with: give one as ``--baseline``
(default mode).

Training (``--train``): seconds per training step and peak memory of the
model against full fine-tuning of the same ViT (the config with
``dispatch=None, adapter_dim=None, freeze_pretrained=False`` unless
``--baseline`` is given; for seg / video the same segmentor / recognizer,
necks and heads trained on both sides), each in a fresh process.

Example::

    python tools/analysis_tools/benchmark.py \
        configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py \
        --batch-size 1 16 --force-rate 0.5 --threads 2
    python tools/analysis_tools/benchmark.py configs/cls/tome/tome-r8_vit-b16_vtab1k.py \
        --compare configs/cls/evit/evit-k0.7_vit-b16_vtab1k.py \
        configs/cls/dyt/dyt-r0.5-d8_vit-b16_vtab1k.py --force-rate 0.5 --batch-size 1 16
"""
import argparse
import multiprocessing
import os
import os.path as osp
import queue as queue_module
import statistics
import tempfile

from mmengine.config import DictAction

#: the choices of --dtype and --runtime (the latter mmdyt.deploy.runtime.RUNTIMES; they are
#: here so that --help and argument errors come before torch is imported)
DTYPE_CHOICES = ('float32', 'bfloat16')
RUNTIME_CHOICES = ('pytorch', 'onnxruntime')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Benchmark a model against a dense baseline')
    parser.add_argument('config', help='config of the model')
    parser.add_argument('--baseline', help='config of the baseline (default: mmpretrain '
                        'VisionTransformer of the same arch; with --train: full tuning)')
    parser.add_argument('--checkpoint', help='checkpoint of the model')
    parser.add_argument('--batch-size', type=int, nargs='+',
                        help='batch sizes (default 16; with --compare the latency sweep '
                        '1 4 16 64 128 on cuda, 1 4 16 on the CPU)')
    parser.add_argument('--shape', type=int, nargs='+',
                        help='one sample of the input, e.g. 3 224 224 (default: the '
                        "backbone's img_size with 3 channels)")
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--dtype', default='float32', choices=DTYPE_CHOICES)
    parser.add_argument('--repeats', type=int, default=5, help='timed repeats')
    parser.add_argument('--warmup', type=int, default=1, help='untimed runs per model')
    parser.add_argument('--iters', type=int, default=1, help='forwards per repeat')
    parser.add_argument('--threads', type=int,
                        help="torch.set_num_threads (default: torch's, the number of cores)")
    parser.add_argument('--force-rate', type=float,
                        help='set the gates so that this fraction of the patch tokens '
                        'is active in every layer (e.g. 0.5 or 1.0)')
    parser.add_argument('--runtime', default='pytorch', choices=RUNTIME_CHOICES,
                        help='run both models in PyTorch or export both to ONNX (skipping '
                        'kept) and run them in ONNX Runtime with the same session options')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile both models (data-dependent shapes captured) and '
                        "report torch._dynamo.explain's graph breaks")
    parser.add_argument('--fuse-cpu', action='store_true',
                        help='run the linear layers of both the model and the baseline on '
                        'oneDNN (mmdyt.deploy.fuse_for_cpu; CPU inference only)')
    parser.add_argument('--kernels', action='store_true',
                        help="time aten's and oneDNN's linear kernels on the backbone's "
                        'layer shapes instead of the models')
    parser.add_argument('--compare', nargs='+', metavar='CONFIG',
                        help='more configs timed side by side with the first one and the '
                        'dense baseline; prints one table (method, GFLOPs, trainable params, '
                        'img/s, ratio) per batch size')
    parser.add_argument('--train', action='store_true',
                        help='training step time and peak memory instead of inference')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the model config, key=value')
    args = parser.parse_args(argv)
    if args.fuse_cpu and (args.device != 'cpu' or args.train or args.kernels):
        parser.error('--fuse-cpu is for CPU inference (--device cpu, no --train / --kernels)')
    if (args.runtime != 'pytorch' or args.compile) and (args.train or args.kernels):
        parser.error('--runtime / --compile time inference (no --train / --kernels)')
    if args.runtime == 'onnxruntime' and (args.device != 'cpu' or args.compile or
                                          args.fuse_cpu or args.dtype != 'float32'):
        parser.error('--runtime onnxruntime runs float32 on the CPU (no --compile / --fuse-cpu)')
    if args.compare and (args.train or args.kernels or args.baseline):
        parser.error('--compare times inference against the dense baseline (no --train, '
                     '--kernels or --baseline)')
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config} does not exist')
    if args.threads is None:
        import torch
        args.threads = torch.get_num_threads()
    if args.batch_size is None:
        args.batch_size = ([16] if not args.compare else
                           [1, 4, 16, 64, 128] if args.device == 'cuda' else [1, 4, 16])
    return args


if __name__ == '__main__':
    parse_args()  # --help and argument errors before the heavy imports below

import torch  # noqa: E402

import mmdyt  # noqa: E402,F401
from mmdyt.analysis import (build_model, dense_baseline, force_activation_rate,  # noqa: E402
                            linear_kernel_times, load_config, measure_flops, summarize,
                            time_interleaved, training_step_cost)
from mmdyt.analysis.baselines import dense_flops  # noqa: E402
from mmdyt.analysis.builder import input_shape  # noqa: E402
from mmdyt.analysis.timing import compare_speed  # noqa: E402
from mmdyt.deploy import fuse_for_cpu  # noqa: E402
from mmdyt.deploy.runtime import InferenceRuntime  # noqa: E402
from mmdyt.models.backbones import FrameDyTVisionTransformer  # noqa: E402
from mmdyt.models.petl import merge_petl  # noqa: E402
from mmdyt.models.task_model import backbone_inputs, find_dyt_backbone  # noqa: E402

DTYPES = {name: getattr(torch, name) for name in DTYPE_CHOICES}
DENSE_BACKBONE = {'model.backbone.dispatch': None, 'model.backbone.adapter_dim': None}
FULL_TUNING = {**DENSE_BACKBONE, 'model.backbone.freeze_pretrained': False}


def task_of(model):
    """'segmentation', 'video' or 'classification'."""
    if hasattr(model, 'decode_head'):
        return 'segmentation'
    if isinstance(find_dyt_backbone(model), FrameDyTVisionTransformer):
        return 'video'
    return 'classification'


def dense_options(config, cfg_options, dense):
    """``cfg_options`` plus ``dense`` (e.g. :data:`DENSE_BACKBONE`), the
    dispatcher losses turned off (the task glue refuses them without
    dispatchers)."""
    model_cfg = load_config(config, cfg_options).model
    losses = {f'model.{k}': None for k in ('rate_loss', 'distill') if k in model_cfg}
    return {**(cfg_options or {}), **dense, **losses}


def dense_task_model(config, cfg_options, model, device, mode='the default mode'):
    """The like-with-like baseline of a segmentor or recognizer: the same
    config with a dense backbone (no dispatchers, no adapters), so necks and
    heads are timed on both sides; None for a classifier (whose baseline is
    mmpretrain's ViT, the head being a single linear layer)."""
    if task_of(model) == 'classification':
        return None
    if not (hasattr(model, 'decode_head') or hasattr(model, 'cls_head')):
        raise ValueError(f'{mode} on {config} (video, {type(model).__name__}): an early-exit '
                         'recognizer has no dense recognizer in its config to compare with; '
                         'give one as --baseline (default mode)')
    options = dense_options(config, cfg_options, DENSE_BACKBONE)
    return build_model(load_config(config, options), device=device)


def format_stats(name, stats, batch_size):
    return (f'{name}: {batch_size / stats["median"]:.2f} img/s, latency '
            f'{stats["median"] * 1e3:.1f} ms (median of repeats, min '
            f'{stats["min"] * 1e3:.1f}, max {stats["max"] * 1e3:.1f}, spread '
            f'{stats["spread"] * 100:.1f}%)')


def fuse_both(models):
    """``fuse_for_cpu`` on every model of ``models`` (name -> model); the
    line saying which kernels they run."""
    reports = {name: fuse_for_cpu(model) for name, model in models.items()}
    fused = [report.reason is None for report in reports.values()]
    if all(fused):
        report = next(iter(reports.values()))
        layers = ', '.join(f'{name} {r.linears} linear layers ({r.gelus} with GELU fused)'
                           for name, r in reports.items())
        return (f'kernels: oneDNN via fuse_for_cpu on both models, calls from '
                f'{report.min_multiply_adds} multiply-adds ({layers})')
    details = '; '.join(f'{name}: {report}' for name, report in reports.items())
    if not any(fused):
        return f'kernels: aten on both models, fuse_for_cpu fell back ({details})'
    return f'kernels: NOT the same on both models ({details})'


def default_baseline(config, cfg_options, model, device, mode='the default mode'):
    """The dense counterpart of the DyT ``model`` and its description: the
    same segmentor / recognizer with a dense backbone, else mmpretrain's ViT
    of the same arch. ``mode`` names the benchmark in the error for an
    early-exit recognizer."""
    baseline = dense_task_model(config, cfg_options, model, device, mode)
    if baseline is None:
        dense = dense_baseline(find_dyt_backbone(model)).to(device)
        mmpretrain = type(dense).__module__.startswith('mmpretrain')
        label = 'mmpretrain VisionTransformer of the same arch' if mmpretrain else \
            'the dense DyTVisionTransformer of the same arch and family'
        return dense, label
    return baseline, (f'the same {type(baseline).__name__} with a dense backbone '
                      '(dispatch=None, adapter_dim=None)')


def benchmark_inference(args):
    cfg = load_config(args.config, args.cfg_options)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    model = build_model(cfg, args.checkpoint, device).to(dtype)
    backbone = find_dyt_backbone(model)
    if args.baseline:
        baseline = build_model(load_config(args.baseline), device=device)
        print(f'baseline: {args.baseline}')
    else:
        if backbone is None:
            raise ValueError(f'{args.config}: no DyTVisionTransformer; give --baseline')
        baseline, label = default_baseline(args.config, args.cfg_options, model, device)
        print(f'baseline: {label}')
    baseline.to(dtype)
    shape = input_shape(args.shape, backbone, cfg)
    print(f'device {device} ({torch.cuda.get_device_name() if device.type == "cuda" else "cpu"})'
          f', dtype {args.dtype}, threads {torch.get_num_threads()}, input {shape}')
    if args.fuse_cpu:
        print(fuse_both(dict(model=model, baseline=baseline)))
    else:
        print('kernels: aten (default) on both models')
    with tempfile.TemporaryDirectory() as directory:
        runtime = InferenceRuntime(dict(model=model, baseline=baseline), args.runtime,
                                   args.compile, shape, args.threads, directory)
        print('\n'.join(runtime.lines))
        if args.compile:
            example = torch.randn(2, *shape, device=device, dtype=dtype)
            print('\n'.join(runtime.graph_breaks(example)))
        benchmark_batches(args, runtime, backbone, shape, device, dtype)


def benchmark_batches(args, runtime, backbone, shape, device, dtype):
    for batch_size in args.batch_size:
        torch.manual_seed(0)
        inputs = torch.randn(batch_size, *shape, device=device, dtype=dtype)
        if args.force_rate is not None:
            if backbone is None:
                raise ValueError('--force-rate needs a DyT backbone')
            rates = force_activation_rate(backbone, args.force_rate,
                                          backbone_inputs(backbone, inputs))
            print(f'batch {batch_size}: forced activation rates '
                  f'{rates.mean().item():.3f} (per layer {rates.min().item():.3f}-'
                  f'{rates.max().item():.3f})')
        times = time_interleaved(runtime.timed(), inputs,
                                 args.repeats, args.warmup, args.iters)
        ratios = [b / m for b, m in zip(times['baseline'], times['model'])]
        for name in ('model', 'baseline'):
            print(f'batch {batch_size}: ' + format_stats(name, summarize(times[name]),
                                                         batch_size))
        print(f'batch {batch_size}: ratio {statistics.median(ratios):.3f} '
              f'(baseline time / model time; per repeat {min(ratios):.3f}-'
              f'{max(ratios):.3f}, {args.repeats} repeats)')


def benchmark_comparison(args):
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    configs = [args.config, *args.compare]
    names = [osp.splitext(osp.basename(config))[0] for config in configs]
    if len(set(names)) != len(names):
        raise ValueError(f'--compare: configs with the same file name: {configs}')
    models, backbones, tasks = {}, {}, {}
    for name, config in zip(names, configs):
        models[name] = build_model(load_config(config, args.cfg_options),
                                   args.checkpoint if config == args.config else None,
                                   device).to(dtype)
        backbones[name] = find_dyt_backbone(models[name])
        if backbones[name] is None:
            raise ValueError(f'{config}: --compare needs DyTVisionTransformer backbones')
        tasks[name] = task_of(models[name])
        merged = merge_petl(models[name])  # LoRA / RepAdapter as deployed
        if merged:
            print(f'{name}: {merged} LoRA / RepAdapter layers merged, as deployed')
    if len(set(tasks.values())) > 1:
        raise ValueError(f'--compare: configs of different tasks ({tasks}); compare '
                         'configs of one task')
    first = backbones[names[0]]
    baseline, description = default_baseline(args.config, args.cfg_options, models[names[0]],
                                             device, mode='--compare')
    baseline.to(device, dtype)
    dense_model = None if tasks[names[0]] == 'classification' else baseline
    if dense_model is None:
        label, dense_backbone = 'dense ViT (baseline)', baseline
    else:
        label = f'dense {type(dense_model).__name__} (baseline)'
        dense_backbone = find_dyt_backbone(dense_model)
        print(f'baseline: {description}')
    shape = input_shape(args.shape, first, load_config(args.config, args.cfg_options))
    trainable = {name: sum(p.numel() for p in b.parameters() if p.requires_grad)
                 for name, b in backbones.items()}
    trainable['baseline'] = sum(p.numel() for p in dense_backbone.parameters())
    print(f'device {device}, dtype {args.dtype}, threads {torch.get_num_threads()}, input '
          f'{shape}, {args.repeats} repeats interleaved, load average '
          f'{os.getloadavg()[0]:.1f}')
    print(fuse_both(dict(models, dense=baseline)) if args.fuse_cpu
          else 'kernels: aten (default) on every model')
    sweep = {}
    for batch_size in args.batch_size:
        torch.manual_seed(0)
        inputs = torch.randn(batch_size, *shape, device=device, dtype=dtype)
        if args.force_rate is not None:
            for backbone in backbones.values():
                if backbone.dispatchers():
                    force_activation_rate(backbone, args.force_rate,
                                          backbone_inputs(backbone, inputs))
        measured = {name: measure_flops(models[name], inputs) for name in names}
        gflops = {name: m['backbone'] / 1e9 for name, m in measured.items()}
        gflops['baseline'] = (dense_flops(first, inputs).mean().item() if dense_model is None
                              else measure_flops(dense_model, inputs)['backbone']) / 1e9
        rows = compare_speed(models, baseline, inputs, args.repeats, args.warmup, args.iters)
        sweep[batch_size] = rows
        print(f'\nbatch {batch_size}' + (f', DyT gates forced to rate {args.force_rate}'
                                         if args.force_rate is not None else '') +
              f' (load average {os.getloadavg()[0]:.1f} after timing)')
        for name, m in measured.items():
            if 'exit_histogram' in m:
                print(f'{name}: dynamic inference at thresholds '
                      f'{[round(t, 4) for t in models[name].thresholds]}, exits '
                      f'{m["exit_histogram"]} of {batch_size}')
        print('| method | GFLOPs | trainable params (M) | img/s | ratio |')
        print('| --- | --- | --- | --- | --- |')
        for name, row in rows.items():
            print(f'| {label if name == "baseline" else name} | '
                  f'{gflops[name]:.4g} | {trainable[name] / 1e6:.4g} | '
                  f'{row["throughput"]:.2f} (spread {row["spread"] * 100:.0f}%) | '
                  f'{row["ratio"]:.2f} ({row["ratio_min"]:.2f}-{row["ratio_max"]:.2f}) |')
    if len(sweep) > 1:
        print_sweep(sweep, label)


def print_sweep(sweep, baseline_label='dense ViT (baseline)'):
    """One table of img/s (ratio to the dense baseline) by batch size."""
    sizes = list(sweep)
    print('\nimg/s by batch size (ratio to the dense baseline)')
    print('| method | ' + ' | '.join(f'batch {b}' for b in sizes) + ' |')
    print('| --- |' + ' --- |' * len(sizes))
    for name in sweep[sizes[0]]:
        cells = [f'{sweep[b][name]["throughput"]:.1f} ({sweep[b][name]["ratio"]:.2f})'
                 for b in sizes]
        label = baseline_label if name == 'baseline' else name
        print(f'| {label} | ' + ' | '.join(cells) + ' |')


def _training_worker(config, cfg_options, batch_size, shape, device, threads, steps,
                     queue):
    torch.set_num_threads(threads)
    cfg = load_config(config, cfg_options)
    model = build_model(cfg, device=device)
    torch.manual_seed(0)
    inputs = torch.randn(batch_size, *input_shape(shape, find_dyt_backbone(model), cfg),
                         device=device)
    result = training_step_cost(model, inputs, steps=steps)
    result['trainable'] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    queue.put(result)


def _in_subprocess(*args):
    context = multiprocessing.get_context('spawn')
    queue = context.Queue()
    process = context.Process(target=_training_worker, args=args + (queue, ))
    # A fixed mmap threshold makes glibc return every freed tensor to the
    # system, so the worker's resident size follows its live tensors.
    previous = os.environ.get('MALLOC_MMAP_THRESHOLD_')
    os.environ['MALLOC_MMAP_THRESHOLD_'] = '65536'
    try:
        process.start()
    finally:
        if previous is None:
            del os.environ['MALLOC_MMAP_THRESHOLD_']
        else:
            os.environ['MALLOC_MMAP_THRESHOLD_'] = previous
    while True:
        try:
            result = queue.get(timeout=1)
            break
        except queue_module.Empty:
            if not process.is_alive():
                raise RuntimeError(f'the training benchmark of {args[0]} failed '
                                   f'(exit code {process.exitcode}), see above')
    process.join()
    return result


def benchmark_training(args):
    if args.baseline:
        baseline = (args.baseline, None)
    else:
        model = build_model(load_config(args.config, args.cfg_options))
        if find_dyt_backbone(model) is None:
            raise ValueError(f'{args.config}: no DyTVisionTransformer; give --baseline')
        baseline = (args.config, dense_options(args.config, args.cfg_options, FULL_TUNING))
        print(f'baseline: full tuning of the same {type(model).__name__} ({task_of(model)}; '
              'dispatch=None, adapter_dim=None, freeze_pretrained=False)')
    for batch_size in args.batch_size:
        results = {}
        for name, (config, options) in dict(model=(args.config, args.cfg_options),
                                            baseline=baseline).items():
            results[name] = _in_subprocess(config, options, batch_size, args.shape,
                                           args.device, args.threads, args.repeats)
            stats = summarize(results[name]['times'])
            print(f'batch {batch_size}: {name} ({results[name]["trainable"]} trainable '
                  f'params): step {stats["median"]:.3f} s (median of {args.repeats}, '
                  f'spread {stats["spread"] * 100:.1f}%), peak memory '
                  f'{results[name]["peak_bytes"] / 2**20:.0f} MiB')
        time_ratio = (statistics.median(results['model']['times']) /
                      statistics.median(results['baseline']['times']))
        base_peak = results['baseline']['peak_bytes']
        memory_ratio = (f'{results["model"]["peak_bytes"] / base_peak:.3f}' if base_peak > 0
                        else 'n/a (no peak above the start measured for the baseline)')
        print(f'batch {batch_size}: step time ratio {time_ratio:.3f}, peak memory ratio '
              f'{memory_ratio} (model / baseline)')


def benchmark_kernels(args):
    cfg = load_config(args.config, args.cfg_options)
    backbone = find_dyt_backbone(build_model(cfg))
    if backbone is None:
        raise ValueError(f'{args.config}: --kernels needs a DyTVisionTransformer backbone')
    arch = backbone.arch_settings
    grid = backbone.patch_resolution
    tokens = backbone.num_fixed_tokens + grid[0] * grid[1]
    rate = 0.5 if args.force_rate is None else args.force_rate
    active = backbone.num_fixed_tokens + round(rate * (tokens - backbone.num_fixed_tokens))
    # a clip's frames run through the ViT as one batch of images
    frames = (input_shape(args.shape, backbone, cfg)[2]
              if isinstance(backbone, FrameDyTVisionTransformer) else 1)
    counts = sorted({b * frames * n for b in args.batch_size for n in (tokens, active)})
    per_sample = 'image' if frames == 1 else f'frame, {frames} frames per clip'
    print(f'threads {torch.get_num_threads()}, float32, C={arch["embed_dims"]}, '
          f'MLP {arch["feedforward_channels"]}, {tokens} tokens per {per_sample}, '
          f'{active} at rate {rate}')
    print('layer     tokens  aten ms  oneDNN ms  ratio  aten us/token  --fuse-cpu uses')
    for row in linear_kernel_times(arch['embed_dims'], arch['feedforward_channels'], counts,
                                   args.repeats, args.warmup):
        print(f'{row["layer"]:<9} {row["tokens"]:>6} {row["aten"] * 1e3:>8.3f} '
              f'{row["onednn"] * 1e3:>10.3f} {row["ratio"]:>6.2f} '
              f'{row["aten"] * 1e6 / row["tokens"]:>14.2f}  {row["fused"]}')


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.train:
        benchmark_training(args)
    elif args.kernels:
        benchmark_kernels(args)
    elif args.compare:
        benchmark_comparison(args)
    else:
        benchmark_inference(args)


if __name__ == '__main__':
    main()
