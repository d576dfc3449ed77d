"""Lazy registration of the task glue.

The task glue subclasses toolbox classes (mmpretrain's ``ImageClassifier``,
mmseg's ``EncoderDecoder``, mmaction2's ``Recognizer3D`` and ``BaseHead``, the
decord transforms), so importing it imports its toolbox, which takes seconds.
``import mmdyt`` therefore does not import it: :func:`register_task_glue`
registers, in mmengine's root registries, a small builder function under each
glue name of :data:`TASK_GLUE`. A toolbox registry falls back to the root for a
name it does not hold, so a config's ``dict(type='DyTEncoderDecoder')`` finds
the builder from any scope; the builder imports the glue module (which
registers the real class in its toolbox's registry, found first from then on)
and builds that class. ``custom_imports=dict(imports=['mmdyt'])`` thus keeps
every config working, with mmdyt's tools and with the toolboxes' own; a user
who prefers explicit imports can still name the glue module
(``imports=['mmdyt.models.classifiers']``).
"""
import importlib

#: glue module -> (the toolbox package it imports, {root registry: names it registers}).
#: ``tests/test_import.py`` checks it against what each module registers.
TASK_GLUE = {
    'mmdyt.models.classifiers': (
        'mmpretrain', {'MODELS': ('DyTImageClassifier', 'EarlyExitClassifier')}),
    'mmdyt.models.segmentors': ('mmseg', {'MODELS': ('DyTEncoderDecoder', )}),
    'mmdyt.models.recognizers': (
        'mmaction',
        {'MODELS': ('CrossAttentionHead', 'DyTRecognizer3D', 'EarlyExitRecognizer3D')}),
    'mmdyt.datasets.transforms.label_range': ('mmseg', {'TRANSFORMS': ('CheckLabelRange', )}),
    'mmdyt.datasets.transforms.video_augment': (
        'mmaction', {'TRANSFORMS': ('ClipRandAugment', )}),
    'mmdyt.datasets.transforms.video_io': (
        'mmaction', {'TRANSFORMS': ('CheckedDecordDecode', 'CheckedDecordInit')}),
}

#: toolbox package -> its pip distribution
DISTRIBUTIONS = {'mmpretrain': 'mmpretrain', 'mmseg': 'mmsegmentation', 'mmaction': 'mmaction2'}


def glue_class(name):
    """The class of glue name ``name`` (e.g. ``'DyTEncoderDecoder'``), its
    module imported (and so registered in its toolbox's registry)."""
    for module, (toolbox, entries) in TASK_GLUE.items():
        if any(name in names for names in entries.values()):
            break
    else:
        raise KeyError(f'{name} is not an mmdyt task glue name')
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split('.')[0] != toolbox:
            raise
        raise ModuleNotFoundError(
            f'{name} ({module}) needs {toolbox}, which is not installed: '
            f'pip install {DISTRIBUTIONS[toolbox]} (see README.md)', name=e.name) from e


def _builder(name, module):
    """The function registered under ``name`` until ``module`` is imported."""

    def build(*args, **kwargs):
        return glue_class(name)(*args, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__module__ = module
    build.__doc__ = (f'Builds :class:`{module}.{name}`, importing {module} (and its toolbox) '
                     'on first use (:mod:`mmdyt.registry`).')
    build.mmdyt_glue = module
    return build


def register_config_scope():
    """Let mmengine resolve ``mmdyt::`` config paths (``_base_ =
    ['mmdyt::cls/dyt/...']``, ``Config.fromfile('mmdyt::...')``) to the
    configs the package ships in ``mmdyt/.mim/configs``, as it does for the
    OpenMMLab toolboxes it knows."""
    from mmengine.config.utils import MODULE2PACKAGE
    MODULE2PACKAGE.setdefault('mmdyt', 'mmdyt')


def register_task_glue():
    """Register the builders of :data:`TASK_GLUE` in mmengine's root registries
    (once; a name already there is left alone)."""
    import mmengine.registry as root
    for module, (_, entries) in TASK_GLUE.items():
        for registry_name, names in entries.items():
            registry = getattr(root, registry_name)
            for name in names:
                if name not in registry.module_dict:
                    registry.register_module(name=name, module=_builder(name, module))
