"""A plain-PyTorch entry point to Dynamic Tuning, in the style of PEFT's
``get_peft_model`` and ToMe's ``apply_patch``::

    import timm, mmdyt
    model = timm.create_model('vit_base_patch16_224', pretrained=True, num_classes=10)
    model = mmdyt.get_dyt_model(model, dispatch='mlp', adapter_dim=64, target_rate=0.5)
    model.print_trainable_parameters()

:func:`get_dyt_model` reads the architecture of a timm ``VisionTransformer``
(or an mmpretrain ``VisionTransformer`` / ``ImageClassifier``), builds the
:class:`~mmdyt.models.backbones.DyTVisionTransformer` with the same settings,
loads the model's weights into it and keeps the model's classifier head:
a :class:`DyTModel`. A feature the DyT backbone has no setting for is refused
(:class:`UnsupportedModelError`, naming it) rather than dropped. timm and
mmpretrain are imported only when a model of theirs is given.
"""
from .build import UnsupportedModelError, get_dyt_model
from .model import PARAMETER_GROUPS, TUNED_FORMAT, DyTModel

__all__ = ['get_dyt_model', 'DyTModel', 'UnsupportedModelError', 'PARAMETER_GROUPS',
           'TUNED_FORMAT']
