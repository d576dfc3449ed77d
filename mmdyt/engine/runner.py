"""Building the runner of tools/train.py and tools/test.py."""
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .distributed import setup_cpu_distributed
from .work_dir import check_checkpoint_file, find_resume_checkpoint, use_weights_only_loaders


def build_runner(cfg):
    """The config's ``runner_type`` if it names one, else mmengine's Runner,
    with :class:`~mmdyt.engine.hooks.LabelRangeHook`; ``resume=True`` without
    ``load_from`` continues from :func:`find_resume_checkpoint`; ``load_from``
    and resume read the checkpoint with ``torch.load(weights_only=True)``
    (:func:`use_weights_only_loaders`)."""
    if cfg.get('resume') is True and cfg.get('load_from') is None:
        cfg.load_from = find_resume_checkpoint(cfg.work_dir)
    check_checkpoint_file(cfg.get('load_from'))
    use_weights_only_loaders()
    setup_cpu_distributed(cfg)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    runner.register_hook(dict(type='LabelRangeHook'))
    return runner
