"""Logging of the dispatchers' activation rates and the FLOPs computed."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class ActivationLoggerHook(Hook):
    """Logs, for every training iteration,

    * ``rate_layer{i}``: activation rate of dispatcher ``i`` (one per block
      for 'mlp' / 'attn' / 'layer' dispatch, two per block for 'attn_mlp'),
    * ``activation_rate``: their mean,
    * ``gflops``: mean GFLOPs per image of the forward (tokens computed only),

    under ``train/``, so that :class:`LoggerHook` writes them to the log and to
    every visualizer backend (``TensorboardVisBackend`` included), smoothed
    over the log window.

    The model computes them from the record of its training forward and
    returns them beside its losses (``log_efficiency``, which this hook turns
    on in ``before_train``); mmengine's ``RuntimeInfoHook`` puts every such
    output in the message hub. Works with every toolbox's mmdyt model; a
    model without dispatchers logs ``gflops`` only.
    """
    priority = 'NORMAL'

    def before_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'log_efficiency'):
            raise ValueError('ActivationLoggerHook needs an mmdyt model (DyTImageClassifier, '
                             'DyTEncoderDecoder, DyTRecognizer3D or EarlyExitClassifier), '
                             f'got {type(model).__name__}')
        model.log_efficiency = True
