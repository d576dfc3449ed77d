"""Logging of the dispatchers' activation rates and the FLOPs computed."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...models.task_utils import find_dyt_backbone


@HOOKS.register_module()
class ActivationLoggerHook(Hook):
    """After each training iteration, puts into the message hub

    * ``rate_layer{i}``: activation rate of dispatcher ``i`` (one per block
      for 'mlp' / 'attn' / 'layer' dispatch, two per block for 'attn_mlp'),
    * ``activation_rate``: their mean,
    * ``gflops``: mean GFLOPs per image of the forward (tokens computed only),

    under ``train/``, so that :class:`LoggerHook` writes them to the log and to
    every visualizer backend (``TensorboardVisBackend`` included), smoothed
    over the log window. Works with every toolbox (the backbone is found with
    :func:`find_dyt_backbone`); a model without dispatchers logs ``gflops``
    only.
    """
    priority = 'NORMAL'

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        backbone = find_dyt_backbone(runner.model)
        if backbone is None:
            raise ValueError('ActivationLoggerHook needs a DyTVisionTransformer in the model')
        hub = runner.message_hub
        rates = backbone.activation_rates().tolist()
        for i, rate in enumerate(rates):
            hub.update_scalar(f'train/rate_layer{i}', rate)
        if rates:
            hub.update_scalar('train/activation_rate', sum(rates) / len(rates))
        hub.update_scalar('train/gflops', backbone.flops().mean().item() / 1e9)
