"""Building the runner of tools/train.py and tools/test.py."""
import copy
import inspect
import numbers

from mmengine.registry import MODELS, RUNNERS
from mmengine.runner import Runner

from .distributed import setup_cpu_distributed
from .hooks.resume import ResumeHook
from .work_dir import check_checkpoint_file, find_resume_checkpoint, use_weights_only_loaders


def check_train_length(cfg):
    """Refuse a ``train_cfg.max_iters`` / ``max_epochs`` that is not a
    positive whole number: mmengine's loops would train nothing and exit
    successfully (``max_iters=-3``).

    Raises:
        ValueError: naming the key and the value.
    """
    train_cfg = cfg.get('train_cfg')
    if not isinstance(train_cfg, dict):
        return
    for key in ('max_iters', 'max_epochs'):
        if key not in train_cfg:
            continue
        value = train_cfg[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                value != int(value) or value < 1:
            raise ValueError(f'train_cfg.{key} must be a whole number >= 1, got {value!r}: '
                             'the run would train nothing')


def _builds(registry, backbone_cfg):
    """None when ``backbone_cfg`` builds (on the meta device: no memory, no
    time), else the error it raises."""
    import torch
    try:
        with torch.device('meta'):
            registry.build(copy.deepcopy(backbone_cfg))
    except Exception as error:  # noqa: BLE001 - whatever it is, it did not build
        return error
    return None


def backbone_setting_problem(cfg, error):
    """The message naming the ``model.backbone.<key>`` whose value made the
    model's construction fail with ``error``, or None when the backbone
    builds on its own (the error is elsewhere) or no single setting is to
    blame.

    A setting the backbone class does not take is named at once; otherwise
    each setting in turn is left to its default, and the one whose removal
    lets the backbone build is named.
    """
    model = cfg.get('model')
    backbone = model.get('backbone') if isinstance(model, dict) else None
    if not isinstance(backbone, dict) or not isinstance(backbone.get('type'), str):
        return None
    with MODELS.switch_scope_and_registry(cfg.get('default_scope')) as registry:
        cls = registry.get(backbone['type'])
        if cls is None:
            return None
        try:
            params = inspect.signature(cls).parameters
        except (TypeError, ValueError):
            params = {}
        if params and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            unknown = [key for key in backbone if key != 'type' and key not in params]
            if unknown:
                return (f'model.backbone.{unknown[0]}: {cls.__name__} has no setting '
                        f'{unknown[0]!r} (it takes {", ".join(sorted(params))})')
        failure = _builds(registry, backbone)
        if not isinstance(failure, (TypeError, ValueError, AssertionError)):
            return None  # it builds: the error is elsewhere (or unlike the one seen)
        for key in backbone:
            if key == 'type':
                continue
            trial = {k: v for k, v in backbone.items() if k != key}
            if _builds(registry, trial) is None:
                return (f'model.backbone.{key}={backbone[key]!r} is not a valid {cls.__name__} '
                        f'setting: {type(failure).__name__}: {failure}')
    return None


def build_runner(cfg):
    """The config's ``runner_type`` if it names one, else mmengine's Runner,
    with :class:`~mmdyt.engine.hooks.LabelRangeHook` and
    :class:`~mmdyt.engine.hooks.resume.ResumeHook`; ``resume=True`` without
    ``load_from`` continues from :func:`find_resume_checkpoint`; ``load_from``
    and resume read the checkpoint with ``torch.load(weights_only=True)``
    (:func:`use_weights_only_loaders`).

    Raises:
        ValueError: ``train_cfg.max_iters`` / ``max_epochs`` is not >= 1
            (:func:`check_train_length`), or a ``model.backbone`` setting
            (named, e.g. from ``--cfg-options``) makes the backbone's
            constructor fail (:func:`backbone_setting_problem`).
    """
    check_train_length(cfg)
    if cfg.get('resume') is True and cfg.get('load_from') is None:
        cfg.load_from = find_resume_checkpoint(cfg.work_dir)
    check_checkpoint_file(cfg.get('load_from'))
    use_weights_only_loaders()
    setup_cpu_distributed(cfg)
    try:
        runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    except (TypeError, ValueError, AssertionError) as error:
        try:
            problem = backbone_setting_problem(cfg, error)
        except Exception:  # noqa: BLE001 - never hide the error itself
            problem = None
        if problem is None:
            raise
        raise ValueError(problem) from None
    runner.register_hook(dict(type='LabelRangeHook'))
    runner.register_hook(ResumeHook())
    return runner
