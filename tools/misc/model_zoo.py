"""The model zoo: per-family ``metafile.yml``, ``model-index.yml`` and
``docs/model_zoo.md``, from the configs.

Every config outside ``_base_`` folders starts with a comment line
``# <description>``. Each method family folder (``configs/cls/dyt``, ...;
``configs/demo`` is one family) has an OpenMMLab ``metafile.yml``
(``Collections`` + ``Models``) that ``model-index.yml`` imports; mim and
mmengine read them from the installed package's ``.mim``.

FLOPs and parameters are measured, never typed: ``--measure`` builds each
config's model at full size (pretrained weights not loaded, no data) and
counts on one random input of the config's test size (classification: one
image, segmentation: one crop at the backbone's input size, video: one view,
i.e. one clip of the config's clip length at one crop; the test views are
listed). Configs with a target activation rate (DyT) are measured with the
gates forced to that rate (``forced_activation_rate``); early-exit configs
with their untuned thresholds (1.0: no sample exits early, every exit head
runs). Paper figures (``PAPER_RESULTS``) go into the metafiles as
``Results``.

    python tools/misc/model_zoo.py                       # metafiles + doc from the configs
    python tools/misc/model_zoo.py --measure             # (re)measure every config (slow)
    python tools/misc/model_zoo.py --measure --missing   # only configs without figures
    python tools/misc/model_zoo.py --measure configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py
    python tools/misc/model_zoo.py --check               # exit 1 if anything is stale
"""
import argparse
import gc
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = 'docs/model_zoo.md'
INDEX = 'model-index.yml'
START, END = '<!-- model-zoo:start -->', '<!-- model-zoo:end -->'
TASKS = {'cls': 'Classification', 'seg': 'Segmentation', 'video': 'Video', 'demo': 'Demo'}
RESULT_TASKS = {'cls': 'Image Classification', 'seg': 'Semantic Segmentation',
                'video': 'Action Recognition', 'demo': 'Image Classification'}
FLOPS_UNITS = {'cls': 'image', 'seg': 'crop', 'video': 'view', 'demo': 'image'}

PAPERS = {
    'dyt': dict(Title='Dynamic Tuning Towards Parameter and Inference Efficiency for ViT '
                'Adaptation', URL='https://arxiv.org/abs/2403.11808',
                Code='https://github.com/NUS-HPC-AI-Lab/Dynamic-Tuning'),
    'dyn_adapter': dict(Title='Dyn-Adapter: Towards Disentangled Representation for Efficient '
                        'Visual Recognition', URL='https://arxiv.org/abs/2407.14302'),
    'adaptformer': dict(Title='AdaptFormer: Adapting Vision Transformers for Scalable Visual '
                        'Recognition', URL='https://arxiv.org/abs/2205.13535',
                        Code='https://github.com/ShoufaChen/AdaptFormer'),
    'lora': dict(Title='LoRA: Low-Rank Adaptation of Large Language Models',
                 URL='https://arxiv.org/abs/2106.09685', Code='https://github.com/microsoft/LoRA'),
    'vpt': dict(Title='Visual Prompt Tuning', URL='https://arxiv.org/abs/2203.12119',
                Code='https://github.com/KMnP/vpt'),
    'adapter': dict(Title='Parameter-Efficient Transfer Learning for NLP',
                    URL='https://arxiv.org/abs/1902.00751'),
    'repadapter': dict(Title='Towards Efficient Visual Adaption via Structural '
                       'Re-parameterization', URL='https://arxiv.org/abs/2302.08106',
                       Code='https://github.com/luogen1996/RepAdapter'),
    'tome': dict(Title='Token Merging: Your ViT But Faster', URL='https://arxiv.org/abs/2210.09461',
                 Code='https://github.com/facebookresearch/ToMe'),
    'evit': dict(Title='Not All Patches are What You Need: Expediting Vision Transformers via '
                 'Token Reorganizations', URL='https://arxiv.org/abs/2202.07800',
                 Code='https://github.com/youweiliang/evit'),
    'dynamicvit': dict(Title='DynamicViT: Efficient Vision Transformers with Dynamic Token '
                       'Sparsification', URL='https://arxiv.org/abs/2106.02034',
                       Code='https://github.com/raoyongming/DynamicViT'),
}
# family folder -> (method name, paper); the baselines of the DyT tables
# (full, linear, dynamic full tuning) cite the DyT paper.
METHODS = {
    'dyt': ('DyT', 'dyt'),
    'dynamic_full': ('Dynamic full tuning', 'dyt'),
    'full': ('Full tuning', 'dyt'),
    'linear': ('Linear probe', 'dyt'),
    'adaptformer': ('AdaptFormer', 'adaptformer'),
    'lora': ('LoRA', 'lora'),
    'vpt': ('VPT', 'vpt'),
    'adapter': ('Adapter', 'adapter'),
    'repadapter': ('RepAdapter', 'repadapter'),
    'dyn_adapter': ('Dyn-Adapter', 'dyn_adapter'),
    'dyn_lora': ('Dyn-LoRA', 'dyn_adapter'),
    'dyn_repadapter': ('Dyn-RepAdapter', 'dyn_adapter'),
    'tome': ('ToMe', 'tome'),
    'evit': ('EViT', 'evit'),
    'dynamicvit': ('DynamicViT', 'dynamicvit'),
    'demo': ('Fashion-MNIST demo', None),
}
TASK_DOCS = {'cls': 'docs/classification.md', 'seg': 'docs/segmentation.md',
             'video': 'docs/video.md', 'demo': 'docs/demo.md'}
FAMILY_DOCS = {'dyn_adapter': 'docs/dyn_adapter.md', 'dyn_lora': 'docs/dyn_adapter.md',
               'dyn_repadapter': 'docs/dyn_adapter.md', 'tome': 'docs/token_reduction.md',
               'evit': 'docs/token_reduction.md', 'dynamicvit': 'docs/token_reduction.md'}
# dataset slug in a config name -> name (longest slugs first when matching)
DATASETS = {
    'cifar100': 'CIFAR-100', 'cifar10': 'CIFAR-10', 'svhn': 'SVHN', 'food101': 'Food-101',
    'dtd': 'DTD', 'fgvc_aircraft': 'FGVC-Aircraft', 'flowers102': 'Flowers-102',
    'oxford_pets': 'Oxford-IIIT Pets', 'stanford_cars': 'Stanford Cars', 'vtab1k': 'VTAB-1K',
    'imagenet': 'ImageNet', 'k400': 'Kinetics-400', 'ssv2': 'Something-Something V2',
    'ade20k': 'ADE20K', 'coco-stuff164k': 'COCO-Stuff 164k',
    'novel-fashion-1k': 'Fashion-MNIST (5 unseen classes, 1k images)',
    'fashion-mnist-seen5': 'Fashion-MNIST (5 seen classes)',
}
TEST_SETS = {'test-a': 'ImageNet-A', 'test-r': 'ImageNet-R', 'test-sketch': 'ImageNet-Sketch',
             'test-v2': 'ImageNet-V2'}

# The papers' cost figures for a config's setting, as docs/{benchmarks,
# segmentation,video,swin,classification}.md quote them: config name ->
# (figure, source). DyT's are of trained gates (averaged over the test set).
PAPER_FIGURES = {
    'full_swin-b_cifar100': ('15.40 GFLOPs', 'DyT Table 11'),
    'dyt-r0.5_swin-b_cifar100': ('13.25 GFLOPs, 1.55 M adapter params', 'DyT Table 11'),
    'full_vit-l16_cifar100': ('61.60 GFLOPs', 'DyT Table 12'),
    'dyt-r0.5_vit-l16_cifar100': ('43.79 GFLOPs, 3.17 M adapter params', 'DyT Table 12'),
    'dyt-r0.5-d8_vit-b16_vtab1k': ('0.16 M trainable backbone params', 'DyT Table 5'),
    'full_vit-b16_upernet_ade20k-512x512': ('605.36 GFLOPs', 'DyT Table 6'),
    'dyt-r0.5_vit-b16_upernet_ade20k-512x512': ('584.57 GFLOPs', 'DyT Table 6'),
    'dyt-moe4-r0.5_vit-b16_upernet_ade20k-512x512': ('584.40 GFLOPs', 'DyT Table 6'),
    'vpt-deep8_vit-b16_upernet_ade20k-512x512': ('606.36 GFLOPs', 'DyT Table 6'),
    'adaptformer-d64_vit-b16_upernet_ade20k-512x512': ('606.57 GFLOPs', 'DyT Table 6'),
    'full_vit-b16_8x16x1_k400': ('142.53 GFLOPs', 'DyT Table 6'),
    'linear_vit-b16_8x16x1_k400': ('142.53 GFLOPs', 'DyT Table 6'),
    'lora_vit-b16_8x16x1_k400': ('142.53 GFLOPs, LoRA merged into the weights', 'DyT Table 6'),
    'adaptformer_vit-b16_8x16x1_k400': ('144.39 GFLOPs', 'DyT Table 6'),
    'vpt_vit-b16_8x16x1_k400': ('148.44 GFLOPs', 'DyT Table 6'),
    'dyt-r0.5_vit-b16_8x16x1_k400': ('108.31 GFLOPs', 'DyT Table 6'),
    'dyt-moe4-r0.5_vit-b16_8x16x1_k400': ('105.45 GFLOPs', 'DyT Table 6'),
}
# The papers' accuracy figures for a config's setting: config name -> (source,
# {metric: value}), written as the model's ``Results`` (metric names as in
# OpenMMLab metafiles: 'Top 1 Accuracy', 'mIoU').
PAPER_RESULTS = {}


# --------------------------------------------------------------------- configs
def zoo_configs(root=ROOT):
    """Configs that belong in the zoo: every ``configs/**/*.py`` outside
    ``_base_`` folders."""
    return sorted(p for p in (root / 'configs').rglob('*.py') if '_base_' not in p.parts)


def description(path):
    """The config's first line without ``# ``; ValueError if it is no comment."""
    text = path.read_text()
    first = text.splitlines()[0] if text else ''
    if not first.startswith('# ') or len(first) < 4:
        raise ValueError(f'{path}: the first line must be "# <description>" for the model zoo')
    return first[2:].strip()


def family(path, root=ROOT):
    """(task, folder) of a config: ``('cls', 'dyt')``; the demo configs are
    one family, ``('demo', 'demo')``."""
    parts = path.relative_to(root / 'configs').parts
    return (parts[0], parts[0] if len(parts) == 2 else parts[1])


def metafile_path(task, folder):
    return f'configs/{task}' + ('' if task == folder else f'/{folder}') + '/metafile.yml'


def collection_name(task, folder):
    name = METHODS.get(folder, (folder, None))[0]
    return {'cls': name, 'seg': f'{name} (segmentation)', 'video': f'{name} (video)'}.get(
        task, name)


def datasets(stem):
    """(training data, test data) named in a config name, e.g.
    ``dyn-adapter_vit-b16_imagenet-16shot_test-a`` -> ('ImageNet (16-shot)',
    'ImageNet-A')."""
    for slug in sorted(DATASETS, key=len, reverse=True):
        if f'_{slug}' in stem:
            train = DATASETS[slug] + (' (16-shot)' if '-16shot' in stem else '')
            test = next((v for k, v in TEST_SETS.items() if stem.endswith('_' + k)), None)
            return train, test or DATASETS[slug]
    raise ValueError(f'{stem}: no known dataset in the config name (DATASETS)')


# --------------------------------------------------------------------- measuring
def _no_pretrained(cfg):
    """Every ``pretrained`` under ``cfg`` set to None (nothing downloaded or
    loaded: the weights do not change what is computed)."""
    if isinstance(cfg, dict):
        for key in list(cfg):
            if key == 'pretrained':
                cfg[key] = None
            else:
                _no_pretrained(cfg[key])
    elif isinstance(cfg, (list, tuple)):
        for item in cfg:
            _no_pretrained(item)


def test_views(cfg):
    """Views per test video: clips x crops of the test pipeline."""
    pipeline = cfg.get('test_pipeline') or cfg.test_dataloader.dataset.pipeline
    clips = next((step.get('num_clips', 1) for step in pipeline if 'clip_len' in step), 1)
    crops = next(({'ThreeCrop': 3, 'TenCrop': 10}[step['type']] for step in pipeline
                  if step['type'] in ('ThreeCrop', 'TenCrop')), 1)
    return clips * crops


def _sdpa_flops(inputs, outputs):
    """``aten::scaled_dot_product_attention``: the two matmuls, q k^T and
    attn v (B x heads x L x S x D each), which FlopAnalyzer would count as 0."""
    from mmengine.analysis.jit_handles import get_shape
    q, k = get_shape(inputs[0]), get_shape(inputs[1])
    return 2 * q[0] * q[1] * q[2] * k[2] * q[3]


def plain_flops(model, inputs):
    """FLOPs of a model without a DyT backbone: mmengine's FlopAnalyzer (fvcore
    convention, as ``measure_flops`` counts the rest of a model), with the
    attention matmuls counted."""
    from mmengine.analysis import FlopAnalyzer

    from mmdyt.models.task_model import TensorForward
    analyzer = FlopAnalyzer(TensorForward(model), (inputs, ))
    analyzer.set_op_handle('aten::scaled_dot_product_attention', _sdpa_flops)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return analyzer.total() / inputs.shape[0]


def measure(path, root=ROOT):
    """Build ``path``'s model at full size and count its parameters and the
    FLOPs of one random sample (see the module docstring).

    Returns:
        dict: ``FLOPs`` (multiply-adds per image / crop / view), ``Parameters``,
        ``Trainable Parameters``, ``Input Shape``, and where they apply
        ``Activation Rate`` (the forced target rate) and ``Test Views``.
    """
    import torch

    import mmdyt  # noqa: F401
    from mmdyt.analysis import (build_model, count_parameters, forced_activation_rate, load_config,
                                measure_flops)
    from mmdyt.analysis.builder import input_shape
    from mmdyt.models.task_model import backbone_inputs, find_dyt_backbone

    cfg = load_config(str(path))
    _no_pretrained(cfg.model)
    model = build_model(cfg)
    backbone = find_dyt_backbone(model)
    if backbone is None:  # a plain toolbox model (the demo's pretraining ViT)
        size = cfg.model.backbone.get('img_size', 224)
        shape = (3, ) + (tuple(size) if isinstance(size, (list, tuple)) else (size, size))
    else:
        shape = input_shape(None, backbone, cfg)
    torch.manual_seed(0)
    inputs = torch.randn(1, *shape)
    rate_loss = cfg.model.get('rate_loss') or {}
    rate = rate_loss.get('target_rate')
    figures = {}
    if backbone is None:
        result = dict(total=plain_flops(model, inputs))
    elif rate is not None and backbone.dispatchers():
        with forced_activation_rate(backbone, rate, backbone_inputs(backbone, inputs)):
            result = measure_flops(model, inputs)
        figures['Activation Rate'] = rate
    else:
        result = measure_flops(model, inputs)
    trainable, total = count_parameters(model)
    figures.update({'FLOPs': int(round(result['total'])), 'Parameters': total,
                    'Trainable Parameters': trainable,
                    'Input Shape': 'x'.join(str(s) for s in shape[-4:] if s != 1)})
    if family(path, root)[0] == 'video':
        figures['Test Views'] = test_views(cfg)
    del model
    gc.collect()
    return figures


MEASURED = ('FLOPs', 'Parameters', 'Trainable Parameters', 'Input Shape', 'Activation Rate',
            'Test Views')


# --------------------------------------------------------------------- metafiles
def load_metafiles(root=ROOT):
    """metafile path -> its parsed content, for the existing metafiles."""
    out = {}
    for path in sorted((root / 'configs').rglob('metafile.yml')):
        out[path.relative_to(root).as_posix()] = yaml.safe_load(path.read_text()) or {}
    return out


def measured_figures(root=ROOT):
    """config path -> the measured Metadata the metafiles hold for it."""
    figures = {}
    for meta in load_metafiles(root).values():
        for model in meta.get('Models') or []:
            data = model.get('Metadata') or {}
            if 'FLOPs' in data:
                figures[model['Config']] = {k: data[k] for k in MEASURED if k in data}
    return figures


def model_entry(path, collection, figures, root=ROOT):
    rel = path.relative_to(root).as_posix()
    train, test = datasets(path.stem)
    task = family(path, root)[0]
    metadata = {'Description': description(path), 'Training Data': train}
    metadata.update({k: figures[k] for k in MEASURED if k in figures})
    entry = {'Name': path.stem, 'In Collection': collection, 'Config': rel,
             'Metadata': metadata}
    if path.stem in PAPER_FIGURES:
        figure, source = PAPER_FIGURES[path.stem]
        metadata['Paper Figure'] = f'{figure} ({source})'
    if path.stem in PAPER_RESULTS:
        source, metrics = PAPER_RESULTS[path.stem]
        metadata['Results Source'] = source
        entry['Results'] = [{'Task': RESULT_TASKS[task], 'Dataset': test,
                             'Metrics': dict(metrics)}]
    return entry


def metafiles(figures, root=ROOT):
    """metafile path -> content, for every family, with ``figures`` (config
    path -> measured Metadata) filled in."""
    out = {}
    for path in zoo_configs(root):
        task, folder = family(path, root)
        meta_path = metafile_path(task, folder)
        if meta_path not in out:
            collection = {'Name': collection_name(task, folder),
                          'Metadata': {'Task': TASKS[task]}}
            paper = PAPERS.get(METHODS.get(folder, (None, None))[1])
            if paper:
                collection['Paper'] = {'Title': paper['Title'], 'URL': paper['URL']}
                if 'Code' in paper:
                    collection['Code'] = {'URL': paper['Code']}
            collection['README'] = FAMILY_DOCS.get(folder, TASK_DOCS[task])
            out[meta_path] = {'Collections': [collection], 'Models': []}
        rel = path.relative_to(root).as_posix()
        out[meta_path]['Models'].append(
            model_entry(path, out[meta_path]['Collections'][0]['Name'], figures.get(rel, {}),
                        root))
    return out


def dump(data):
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


def model_index(paths):
    return dump({'Import': sorted(paths)})


# --------------------------------------------------------------------- the doc
def gflops(value):
    g = value / 1e9
    return f'{g:.2f}' if g >= 1 else f'{g:.4f}'


def millions(value):
    m = value / 1e6
    return f'{m:.2f}' if m >= 1 else f'{m:.3f}'


def paper_cell(model):
    cells = [model['Metadata'].get('Paper Figure', '')]
    for result in model.get('Results') or []:
        metrics = ', '.join(f'{k} {v}' for k, v in result['Metrics'].items())
        cells.append(f"{result['Dataset']} {metrics} ({model['Metadata']['Results Source']})")
    return '; '.join(c for c in cells if c)


DOC_HEAD = """# Model zoo

Every config under `configs/`, one table per task, generated from the
metafiles (`configs/**/metafile.yml`, imported by `model-index.yml`) by
`python tools/misc/model_zoo.py`; `tests/tools/test_model_zoo.py` fails when
this page, the metafiles and the configs disagree. The description is the
config's first line. Paths to pretrained weights in the configs
(`data/pretrained/...`) are where `tools/model_converters/vit_to_mmdyt.py`
output is expected; no trained checkpoints are published.

**How the figures are measured** (`python tools/misc/model_zoo.py --measure`,
never typed in): each config's model is built at full size (random weights,
`pretrained=None`, no data), its parameters counted (total, and trainable:
`requires_grad`), and its FLOPs counted by `mmdyt.analysis.measure_flops` on
one random input of the config's test size: one multiply-add is one FLOP
(fvcore), attention matmuls and LayerNorms included (`get_flops.py`'s
`mmdyt` convention; the Dyn-Adapter tables count linear layers and the patch
embedding only, `--convention paper`). Configs with a target activation rate
(DyT, dynamic full tuning) are measured with the gates forced to that rate
(`mmdyt.models.task_model.forced_activation_rate`): the figure is that of the
target rate ("forced rate" column), not of a trained model, whose rate varies per
image. Early-exit configs (Dyn-*) are measured with their untuned thresholds:
no sample exits early, every block and every exit head runs (the calibrated
budget, e.g. 50 %, is set on validation data before testing). Token
reduction (ToMe, EViT, DynamicViT) keeps its fixed token schedule. A model
without a DyT backbone (the demo's pretraining ViT) is counted by mmengine's
`FlopAnalyzer` with the attention matmuls added (the same count for a dense
ViT-B/16: 17.58 G).

**Paper column:** the paper's cost figure for the config's setting, as
[benchmarks](benchmarks.md#swin-b-and-vit-l), [segmentation](segmentation.md),
[video](video.md) and [classification](classification.md) quote it (table
named). The dense figures agree with the measured ones to within 0.5 %; DyT's
are of trained gates averaged over the test set, so they differ from the
forced-rate figures here.
"""

TASK_NOTES = {
    'cls': 'GFLOPs per image.',
    'seg': 'GFLOPs per crop at the backbone\'s input size (the input column; '
           'sliding-window testing runs several crops per image).',
    'video': 'GFLOPs per view: one clip at one crop (the input column, C x T x H x W); '
             'testing averages the views column (clips x crops) per video.',
    'demo': 'GFLOPs per image.',
}


def render_doc(metas):
    models = {}
    for meta in metas.values():
        for model in meta['Models']:
            models[model['Config']] = (meta['Collections'][0], model)
    lines = [DOC_HEAD]
    for task, title in TASKS.items():
        rows = [(col, m) for cfg, (col, m) in sorted(models.items())
                if cfg.split('/')[1] == task]
        if not rows:
            continue
        unit = FLOPS_UNITS[task]
        views = ' views |' if task == 'video' else ''
        lines += [f'## {title}', '', TASK_NOTES[task], '',
                  f'| method | config | description | GFLOPs / {unit} (DyT: at the forced rate) '
                  f'| forced rate | input |{views} '
                  'params (M) | trainable (M) | paper |',
                  '| --- ' * (10 if views else 9) + '|']
        for collection, model in rows:
            data = model['Metadata']
            measured = 'FLOPs' in data
            cells = [collection['Name'], f"[{model['Name']}](../{model['Config']})",
                     data['Description'],
                     gflops(data['FLOPs']) if measured else 'not measured',
                     str(data.get('Activation Rate', '')), data.get('Input Shape', '')]
            if views:
                cells.append(str(data.get('Test Views', '')))
            cells += [millions(data['Parameters']) if measured else '',
                      millions(data['Trainable Parameters']) if measured else '',
                      paper_cell(model)]
            lines.append('| ' + ' | '.join(c.replace('|', '\\|') for c in cells) + ' |')
        lines.append('')
    return '\n'.join(lines)


README_SECTION = f"""{START}
Every config, with its measured GFLOPs and parameters and the paper's figure
where there is one, is listed in [docs/model_zoo.md](docs/model_zoo.md),
generated from the per-family `metafile.yml` files (imported by
`model-index.yml`, which `mim search mmdyt` reads) by
`python tools/misc/model_zoo.py`.
{END}"""


def updated_readme(text):
    if START not in text or END not in text:
        raise ValueError(f'README.md lacks the {START} / {END} markers')
    head, rest = text.split(START, 1)
    return head + README_SECTION + rest.split(END, 1)[1]


# --------------------------------------------------------------------- files
def outputs(root=ROOT, figures=None, readme=True):
    """path -> text of every generated file (metafiles, model-index.yml, the
    doc and, with ``readme``, README.md with its model zoo section)."""
    figures = measured_figures(root) if figures is None else figures
    metas = metafiles(figures, root)
    files = {path: dump(meta) for path, meta in metas.items()}
    files[INDEX] = model_index(metas)
    files[DOC] = render_doc(metas)
    if readme and (root / 'README.md').exists():
        files['README.md'] = updated_readme((root / 'README.md').read_text())
    return files


def stale(root=ROOT):
    """Generated files whose text differs from what the configs give, and
    configs without measured figures."""
    files = outputs(root)
    diff = [p for p, text in files.items()
            if not (root / p).exists() or (root / p).read_text() != text]
    figures = measured_figures(root)
    missing = [p.relative_to(root).as_posix() for p in zoo_configs(root)
               if p.relative_to(root).as_posix() not in figures]
    return diff, missing


def write(root=ROOT, figures=None, readme=True):
    for path, text in outputs(root, figures, readme).items():
        target = root / path
        if not target.exists() or target.read_text() != text:
            target.write_text(text)


def run_measure(paths, root=ROOT, missing_only=False, log=print):
    """Measure ``paths`` (all configs by default) and write every file after
    each one, so an interrupted run keeps what it measured."""
    import torch
    torch.set_num_threads(1)
    figures = measured_figures(root)
    configs = [Path(p).resolve() for p in paths] if paths else zoo_configs(root)
    failed = []
    for i, path in enumerate(configs, 1):
        rel = path.relative_to(root).as_posix()
        if missing_only and rel in figures:
            continue
        start = time.time()
        try:
            figures[rel] = measure(path, root)
        except Exception as error:  # report, go on with the others
            failed.append(rel)
            log(f'[{i}/{len(configs)}] {rel}: FAILED {type(error).__name__}: {error}')
            continue
        log(f'[{i}/{len(configs)}] {rel}: {figures[rel]["FLOPs"] / 1e9:.3f} GFLOPs, '
            f'{figures[rel]["Parameters"] / 1e6:.2f} M params ({time.time() - start:.1f} s)')
        write(root, figures, readme=False)
    write(root, figures, readme=False)
    return failed


def main(argv=None):
    parser = argparse.ArgumentParser(description='model zoo: metafiles, model-index.yml, '
                                     f'{DOC}')
    parser.add_argument('configs', nargs='*', help='with --measure: configs to measure '
                        '(default: all)')
    parser.add_argument('--measure', action='store_true',
                        help='build the models and count FLOPs and parameters (slow)')
    parser.add_argument('--missing', action='store_true',
                        help='with --measure: only configs without figures')
    parser.add_argument('--check', action='store_true',
                        help='exit 1 if a generated file is stale or a config is unmeasured')
    args = parser.parse_args(argv)
    if args.check:
        diff, missing = stale()
        if diff or missing:
            sys.exit('model zoo is stale: ' + ', '.join(diff) + (
                f'; not measured: {", ".join(missing)} (python tools/misc/model_zoo.py '
                '--measure --missing)' if missing else '') +
                ('' if missing else ' (python tools/misc/model_zoo.py)'))
        return
    if args.measure:
        failed = run_measure(args.configs, missing_only=args.missing,
                             log=lambda s: print(s, flush=True))
        if failed:
            sys.exit(f'{len(failed)} configs failed: {", ".join(failed)}')
        return
    write()
    _, missing = stale()
    if missing:
        print(f'{len(missing)} configs not measured: python tools/misc/model_zoo.py --measure '
              '--missing', file=sys.stderr)


if __name__ == '__main__':
    main()
