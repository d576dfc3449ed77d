"""Building a model (and the shape of its input) from a config, for the
analysis tools."""
import copy

from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

from ..engine.work_dir import check_checkpoint_file, use_weights_only_loaders
from ..models.backbones import FrameDyTVisionTransformer


def load_config(config, cfg_options=None):
    """A config file path -> ``Config`` with ``cfg_options`` merged and the
    config's ``default_scope`` made current (its ``custom_imports`` are
    applied by ``Config.fromfile``) and mmengine's checkpoint loaders reading
    with ``torch.load(weights_only=True)`` (:func:`use_weights_only_loaders`)."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    use_weights_only_loaders()  # what the tool loads through mmengine: weights_only=True
    return cfg


def build_model(cfg, checkpoint=None, device='cpu'):
    """``cfg.model`` -> model in eval mode on ``device``, with ``checkpoint``
    loaded when given (the ViT ``pretrained`` weights are not loaded: they do
    not change what is computed); the checkpoint is read with
    ``torch.load(weights_only=True)`` (:func:`use_weights_only_loaders`), so
    that no code in it runs. A top-level ``data_preprocessor`` (where
    mmpretrain configs put the normalization) goes into the model unless the
    model names its own, as mmengine's Runner does."""
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    if checkpoint is not None:
        check_checkpoint_file(checkpoint)
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        use_weights_only_loaders()  # torch.load(weights_only=True), whatever the environment
        load_checkpoint(model, checkpoint, map_location='cpu')
    model.to(device)
    model.eval()
    return model


def input_shape(shape, backbone, cfg=None):
    """One sample of the model's input: ``shape`` (e.g. a tool's
    ``--shape``) when given, else (3, H, W) at the ``backbone``'s
    ``img_size``; for a recognizer (1, 3, T, H, W): one clip of the config's
    ``clip_len`` frames (8 if the test pipeline does not say)."""
    if shape:
        return tuple(shape)
    if backbone is None:
        raise ValueError('no DyT backbone to read the input size from: give the shape')
    if isinstance(backbone, FrameDyTVisionTransformer):
        pipeline = (cfg or {}).get('test_pipeline') or []
        clip_len = next((step['clip_len'] for step in pipeline if 'clip_len' in step), 8)
        return (1, 3, clip_len) + tuple(backbone.img_size)
    return (3, ) + tuple(backbone.img_size)
