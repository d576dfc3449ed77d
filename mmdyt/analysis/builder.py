"""Building a model (and its test data) from a config, for the analysis tools."""
import copy

from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint


def load_config(config, cfg_options=None):
    """A config file path -> ``Config`` with ``cfg_options`` merged and the
    config's ``default_scope`` made current (its ``custom_imports`` are
    applied by ``Config.fromfile``)."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    return cfg


def build_model(cfg, checkpoint=None, device='cpu'):
    """``cfg.model`` -> model in eval mode on ``device``, with ``checkpoint``
    loaded when given (the ViT ``pretrained`` weights are not loaded: they do
    not change what is computed). A top-level ``data_preprocessor`` (where
    mmpretrain configs put the normalization) goes into the model unless the
    model names its own, as mmengine's Runner does."""
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu')
    model.to(device)
    model.eval()
    return model
