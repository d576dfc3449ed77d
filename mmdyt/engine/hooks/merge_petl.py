"""Test the deployed form of a PETL model: LoRA and RepAdapter merged."""
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from ...models.petl import merge_petl


@HOOKS.register_module()
class MergePETLHook(Hook):
    """Before ``runner.test()``, re-parameterise LoRA and RepAdapter modules
    into their linear layers (``mmdyt.models.petl.merge_petl``), so the test
    metrics (accuracy, GFLOPs) are those of the model one deploys and match
    what ``tools/analysis_tools/calibrate_exits.py`` measured. Validation
    during training runs unmerged: merging is irreversible."""

    def before_test(self, runner):
        merged = merge_petl(runner.model)
        print_log(f'MergePETLHook: merged {merged} LoRA / RepAdapter modules for testing',
                  logger='current')
