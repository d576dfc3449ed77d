"""What importing costs: ``import mmdyt`` imports no toolbox (its task glue
registers lazily, :mod:`mmdyt.registry`; the toolbox fixes of
:mod:`mmdyt.compat` wait for their toolbox), and every tool answers
``--help`` and a missing config before torch is imported."""
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / 'tools'
TESTS = Path(__file__).resolve().parent
TOOLBOXES = ('mmpretrain', 'mmseg', 'mmaction')
#: Top-level packages a tool's --help or argument error must not import.
HEAVY = ('torch', 'mmpretrain', 'mmseg', 'mmaction', 'timm', 'mmdyt')


def run_python(*args, cwd=ROOT, timeout=300):
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(
        [str(ROOT), str(TESTS / 'data'), os.environ.get('PYTHONPATH', '')])}
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def report(code, **kwargs):
    """Run ``code`` in a fresh interpreter; the JSON it prints last."""
    proc = run_python('-c', code, **kwargs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


# --------------------------------------------------------------------------
# import mmdyt


def test_import_mmdyt_imports_no_toolbox_and_registers_the_core():
    out = report('''
import json, sys
import mmdyt
from mmengine import registry
print(json.dumps(dict(
    imported=[m for m in ('mmpretrain', 'mmseg', 'mmaction', 'timm') if m in sys.modules],
    pending=mmdyt.compat.pending_fixes(),
    core=[name in registry.MODELS.module_dict for name in (
        'DyTVisionTransformer', 'FrameDyTVisionTransformer', 'DyTSwinTransformer',
        'ActivationRateLoss')] + [
        'EfficiencyMetric' in registry.METRICS.module_dict,
        'VTAB1k' in registry.DATASETS.module_dict,
        'LabelRangeHook' in registry.HOOKS.module_dict],
    glue={name: getattr(registry.MODELS.get(name), 'mmdyt_glue', None)
          for name in ('DyTImageClassifier', 'DyTEncoderDecoder', 'DyTRecognizer3D')})))
''')
    assert out['imported'] == []
    assert all(out['core'])
    assert out['glue'] == {'DyTImageClassifier': 'mmdyt.models.classifiers',
                           'DyTEncoderDecoder': 'mmdyt.models.segmentors',
                           'DyTRecognizer3D': 'mmdyt.models.recognizers'}
    # the toolbox fixes wait for their toolbox (where they target the installed versions)
    assert set(out['pending']) <= {'mmcv_ops', 'mmaction_drn', 'mmpretrain_image_errors'}


def test_task_glue_table_matches_what_the_glue_modules_register():
    """:data:`mmdyt.registry.TASK_GLUE` names exactly what each glue module
    registers in its toolbox's registries."""
    for toolbox in TOOLBOXES:
        pytest.importorskip(toolbox)
    from mmdyt.registry import TASK_GLUE
    expected, found = set(), set()
    for module, (toolbox, entries) in TASK_GLUE.items():
        importlib.import_module(module)
        registries = importlib.import_module(f'{toolbox}.registry')
        for registry_name, names in entries.items():
            expected |= {(toolbox, registry_name, name, module) for name in names}
    for toolbox in TOOLBOXES:
        registries = importlib.import_module(f'{toolbox}.registry')
        for registry_name in ('MODELS', 'TRANSFORMS', 'DATASETS', 'METRICS', 'HOOKS'):
            registry = getattr(registries, registry_name)
            for name, obj in registry.module_dict.items():
                module = getattr(obj, '__module__', '')
                if module.startswith('mmdyt.') and module != 'mmdyt.compat':  # not DRN's
                    glue = next(m for m in TASK_GLUE if module.startswith(m))
                    found.add((toolbox, registry_name, name, glue))
    assert found == expected


#: toolbox -> (glue module, name, code building ``model`` as mmengine's Runner does:
#: root registry, the toolbox as default scope; ``TINY`` is the tiny ViT arch)
GLUE_BUILDS = {
    'mmpretrain': ('mmdyt.models.classifiers', 'DyTImageClassifier', '''
init_default_scope('mmpretrain')
model = MODELS.build(dict(type='DyTImageClassifier', backbone=tiny_vit_cfg(2, adapter_dim=8),
                          head=dict(type='LinearClsHead', num_classes=5, in_channels=48)))
import mmpretrain.datasets  # as building the config's datasets does
'''),
    'mmseg': ('mmdyt.models.segmentors', 'DyTEncoderDecoder', '''
from mmengine.config import Config
cfg = Config.fromfile('configs/seg/dyt/dyt-r0.5_vit-b16_upernet_ade20k-512x512.py')
cfg.model.backbone.update(arch=tiny_arch(4), img_size=64, pretrained=None,
                          out_indices=(0, 1, 2, 3))
cfg.model.neck.embed_dim = 48
cfg.model.decode_head.update(in_channels=[48] * 4, channels=16)
cfg.model.auxiliary_head.update(in_channels=48, channels=8)
cfg.model.data_preprocessor.size = (64, 64)
init_default_scope(cfg.default_scope)
model = MODELS.build(cfg.model)
from mmseg.registry import TRANSFORMS
transform = TRANSFORMS.build(dict(type='CheckLabelRange', num_classes=3))
'''),
    'mmaction': ('mmdyt.models.recognizers', 'DyTRecognizer3D', '''
init_default_scope('mmaction')
model = MODELS.build(dict(
    type='DyTRecognizer3D', rate_loss=dict(type='ActivationRateLoss'),
    backbone=tiny_vit_cfg(2, type='FrameDyTVisionTransformer', adapter_dim=8),
    cls_head=dict(type='CrossAttentionHead', num_classes=5, in_channels=48, num_heads=3)))
from mmaction.registry import TRANSFORMS
transform = TRANSFORMS.build(dict(type='ClipRandAugment'))
'''),
}


@pytest.mark.parametrize('toolbox_first', [False, True], ids=['mmdyt_first', 'toolbox_first'])
@pytest.mark.parametrize('toolbox', TOOLBOXES)
def test_glue_builds_from_its_scope_without_being_imported(toolbox, toolbox_first):
    """A config builds the glue by name: the root's builder imports the glue
    module (and the toolbox, its fixes applied first), after which the real
    class is the toolbox registry's. ``toolbox_first``: the toolbox imported
    before mmdyt, as its own tools/train.py does (``custom_imports``)."""
    pytest.importorskip(toolbox)
    module, name, build = GLUE_BUILDS[toolbox]
    out = report(f'''
import importlib, json, sys
{f'import {toolbox}.registry' if toolbox_first else ''}
import mmdyt
from mmengine.registry import MODELS, init_default_scope
from tiny_dyt import tiny_arch, tiny_vit_cfg
glue_before = {module!r} in sys.modules
{build}
cls = getattr(importlib.import_module({module!r}), {name!r})
toolbox_models = importlib.import_module({toolbox!r} + '.registry').MODELS
print(json.dumps(dict(
    glue_before=glue_before, isinstance=isinstance(model, cls),
    registered=toolbox_models.get({name!r}) is cls,
    head=type(getattr(model, 'cls_head', None)).__module__,
    transform=type(globals().get('transform')).__module__,
    applied=sorted(mmdyt.compat.applied_fixes()), pending=mmdyt.compat.pending_fixes())))
''')
    assert not out['glue_before']
    assert out['isinstance'] and out['registered']
    if toolbox == 'mmaction':
        assert out['head'] == 'mmdyt.models.recognizers.head'
    if toolbox != 'mmpretrain':
        assert out['transform'].startswith('mmdyt.datasets.transforms.')
    # the fixes of the toolbox imported are no longer pending
    waiting = {'mmpretrain': 'mmpretrain_image_errors', 'mmseg': 'mmcv_ops',
               'mmaction': 'mmaction_drn'}
    assert waiting[toolbox] not in out['pending']


def test_custom_imports_can_name_a_glue_module(tmp_path):
    pytest.importorskip('mmpretrain')
    config = tmp_path / 'explicit.py'
    config.write_text("custom_imports = dict(imports=['mmdyt.models.classifiers'], "
                      'allow_failed_imports=False)\n')
    out = report(f'''
import json
from mmengine.config import Config
Config.fromfile({str(config)!r})
from mmpretrain.registry import MODELS
from mmdyt.models.classifiers import DyTImageClassifier
print(json.dumps(MODELS.module_dict.get('DyTImageClassifier') is DyTImageClassifier))
''')
    assert out is True


def test_a_missing_toolbox_is_named():
    out = report('''
import json, sys
sys.modules['mmseg'] = None  # as if mmsegmentation were not installed
import mmdyt
from mmengine.registry import MODELS
try:
    MODELS.build(dict(type='DyTEncoderDecoder'))
except ModuleNotFoundError as e:
    print(json.dumps(str(e)))
''')
    assert out.startswith('DyTEncoderDecoder (mmdyt.models.segmentors) needs mmseg, which is '
                          'not installed: pip install mmsegmentation')
    from mmdyt import registry
    with pytest.raises(KeyError, match='not an mmdyt task glue name'):
        registry.glue_class('NoSuchModel')


# --------------------------------------------------------------------------
# the tools: --help and a missing config before any heavy import

#: tool -> arguments naming a missing config (the message must name it); None: the
#: tool takes no config.
TOOL_ARGS = {
    'train.py': ['missing.py'],
    'test.py': ['missing.py', 'ckpt.pth'],
    'demo.py': None,
    'analysis_tools/benchmark.py': ['missing.py'],
    'analysis_tools/calibrate_exits.py': ['missing.py', 'ckpt.pth'],
    'analysis_tools/get_flops.py': ['missing.py'],
    'analysis_tools/profile_onnx.py': ['missing.py'],
    'analysis_tools/tome_sweep.py': ['missing.py', 'ckpt.pth'],
    'analysis_tools/visualize_tokens.py': ['missing.py', 'image.png'],
    'analysis_tools/vtab_table.py': ['missing*.py'],
    'deployment/export_onnx.py': ['missing.py', 'ckpt.pth', '--out', 'x.onnx'],
    'misc/dyt_config.py': ['missing.py', 'out.py'],
    'misc/model_zoo.py': None,
    'model_converters/vit_to_mmdyt.py': None,
}


def test_every_tool_is_checked():
    tools = {str(p.relative_to(TOOLS)) for p in TOOLS.rglob('*.py')}
    assert tools == set(TOOL_ARGS)


def heavy_imports(proc):
    """The modules of ``HEAVY`` (and mmengine's runner) that ``python -X
    importtime`` saw imported."""
    names = {line.rsplit('|', 1)[-1].strip() for line in proc.stderr.splitlines()
             if line.startswith('import time:')}
    return sorted(n for n in names
                  if n.split('.')[0] in HEAVY or n.startswith('mmengine.runner'))


@pytest.mark.parametrize('tool', sorted(TOOL_ARGS))
def test_help_imports_no_torch(tool, tmp_path):
    proc = run_python('-X', 'importtime', TOOLS / tool, '--help', cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'usage:' in proc.stdout
    assert heavy_imports(proc) == []


@pytest.mark.parametrize('tool', sorted(t for t, args in TOOL_ARGS.items() if args))
def test_missing_config_is_named_before_torch_is_imported(tool, tmp_path):
    args = TOOL_ARGS[tool]
    proc = run_python('-X', 'importtime', TOOLS / tool, *args, cwd=tmp_path)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if not line.startswith('import time:')]
    assert any(args[0] in line for line in errors), '\n'.join(errors[-20:])
    assert heavy_imports(proc) == []


def test_tool_choices_match_mmdyt():
    """Tools keep the choices of their options that mmdyt defines, so that
    --help needs no import of mmdyt: they must stay equal."""
    from mmdyt.deploy.runtime import RUNTIMES
    from mmdyt.engine.exit_calibration import CALIBRATION_MODES
    from mmdyt.models.flops import FLOPS_CONVENTIONS
    from train_runs import load_tool
    assert load_tool('analysis_tools/benchmark').RUNTIME_CHOICES == RUNTIMES
    assert load_tool('analysis_tools/calibrate_exits').CALIBRATION_MODES == CALIBRATION_MODES
    assert load_tool('analysis_tools/get_flops').FLOPS_CONVENTIONS == FLOPS_CONVENTIONS
