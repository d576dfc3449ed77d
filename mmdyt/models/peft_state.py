"""Checkpoints of parameter-efficient runs: trainable weights + base name.

A PEFT run changes a few million parameters of a model whose other weights
come from a pretrained checkpoint. :func:`install_peft_state` makes the
model's ``state_dict()`` (torch's and mmengine's ``get_state_dict``, which the
runner's checkpoints use) keep only

* the parameters with ``requires_grad=True`` (adapters, dispatchers, LoRA,
  prompts, the head; everything for full tuning) and all buffers,
* the name of the base checkpoint, in the state dict's ``_metadata`` under
  the model's prefix (``_metadata[''][PEFT_METADATA_KEY]``),

while a model without a base checkpoint (trained from scratch, or a test
with ``pretrained=None``) saves everything,

as mmpretrain's ``LoRAModel`` does. Loading such a state dict (``load_state_dict``,
mmengine's ``load_checkpoint``, the runner's ``load_from`` / resume) first
loads the named base checkpoint through ``load_base`` and fills the missing
frozen weights with it, so the model ends up exactly as it was saved. A full
state dict (every key present) loads as usual, without reading the base.

The functions are toolbox-neutral: the classifier, segmentor and recognizer
glue call :func:`install_peft_state` in their ``__init__`` (through
:class:`mmdyt.models.task_utils.DyTTaskMixin`). Keys of checkpoints written
by earlier releases are renamed first (``upgrade_legacy_keys``).
"""
import torch.nn as nn

from .backbones.checkpoint import upgrade_legacy_keys

PEFT_METADATA_KEY = 'peft_base_checkpoint'


def frozen_parameter_names(model):
    """Names of the parameters with ``requires_grad=False``."""
    return [name for name, param in model.named_parameters() if not param.requires_grad]


def install_peft_state(model: nn.Module, base_checkpoint, load_base):
    """Save trainable weights only; load them back over the base checkpoint.

    Args:
        model (nn.Module): the whole model (classifier, segmentor ...), the
            module whose ``state_dict`` the checkpoints hold.
        base_checkpoint (Callable[[], str | None]): returns the name of the
            checkpoint the frozen weights come from (called at save time,
            e.g. ``lambda: backbone.pretrained``).
        load_base (Callable[[str], None]): loads that checkpoint's weights
            into ``model`` in place (e.g. ``load_vit_checkpoint`` of the
            backbone).

    Raises (at load time):
        ValueError: the state dict lacks frozen weights and names no base
            checkpoint (and the model has none either).
    """

    def keep_trainable(module, state_dict, prefix, local_metadata):
        base = base_checkpoint()
        if base is None:
            return
        for name in frozen_parameter_names(module):
            state_dict.pop(prefix + name, None)
        local_metadata[PEFT_METADATA_KEY] = base

    def fill_frozen(module, state_dict, prefix, local_metadata, strict,
                    missing_keys, unexpected_keys, error_msgs):
        upgrade_legacy_keys(state_dict)
        missing = [name for name in frozen_parameter_names(module)
                   if prefix + name not in state_dict]
        if not missing:
            return
        base = local_metadata.get(PEFT_METADATA_KEY) or base_checkpoint()
        if base is None:
            raise ValueError(
                f'the state dict lacks {len(missing)} frozen weights (e.g. '
                f'{missing[:3]}) and names no base checkpoint: save the PEFT run '
                'with a pretrained checkpoint set, or load a full checkpoint')
        load_base(base)
        own = dict(module.named_parameters())
        for name in missing:
            state_dict[prefix + name] = own[name].detach()

    model._register_state_dict_hook(keep_trainable)
    model._register_load_state_dict_pre_hook(fill_frozen, with_module=True)
    return model
