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
:class:`mmdyt.models.task_mixin.DyTTaskMixin`). Keys of checkpoints written
by earlier releases are renamed first (``upgrade_legacy_keys``).
"""
import hashlib

import torch
import torch.nn as nn
from mmengine.logging import MMLogger

from .backbones.checkpoint import upgrade_legacy_keys

PEFT_METADATA_KEY = 'peft_base_checkpoint'
#: sha256 of the frozen weights the tuned-only checkpoint was trained on.
PEFT_FINGERPRINT_KEY = 'peft_base_fingerprint'


def frozen_parameter_names(model):
    """Names of the parameters with ``requires_grad=False``."""
    return [name for name, param in model.named_parameters() if not param.requires_grad]


def weights_fingerprint(model, names):
    """sha256 (hex) of the parameters ``names`` of ``model``: their names,
    dtypes, shapes and bytes, in sorted name order."""
    params = dict(model.named_parameters())
    digest = hashlib.sha256()
    for name in sorted(names):
        tensor = params[name].detach().cpu().contiguous()
        digest.update(f'{name}:{tensor.dtype}:{tuple(tensor.shape)};'.encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def state_dict_keys(model):
    """The keys ``model.state_dict()`` would have when saving everything:
    parameters and persistent buffers."""
    keys = set(dict(model.named_parameters()))
    for module_name, module in model.named_modules():
        for name, buffer in module._buffers.items():
            if buffer is not None and name not in module._non_persistent_buffers_set:
                keys.add(f'{module_name}.{name}' if module_name else name)
    return keys


def check_own_keys(model, state_dict, prefix):
    """Refuse a state dict that lacks trainable weights of ``model`` (adapters,
    dispatchers, the head ...) or holds keys ``model`` does not have: mmengine
    loads with ``strict=False`` and would only warn, then predict with random
    weights.

    Raises:
        ValueError: naming the missing / unexpected keys.
    """
    trainable = [name for name, param in model.named_parameters() if param.requires_grad]
    missing = [name for name in trainable if prefix + name not in state_dict]
    own = state_dict_keys(model)
    unexpected = sorted(key[len(prefix):] for key in state_dict
                        if key.startswith(prefix) and key[len(prefix):] not in own)
    problems = []
    if missing:
        problems.append(f'lacks {len(missing)} trainable weights of the model, e.g. '
                        f'{missing[:5]}')
    if unexpected:
        problems.append(f'has {len(unexpected)} keys the model does not have, e.g. '
                        f'{unexpected[:5]}')
    if problems:
        raise ValueError(f'the checkpoint does not fit {type(model).__name__}: it '
                         f'{" and ".join(problems)} (a checkpoint of another config? '
                         'for pretrained ViT weights set the backbone\'s pretrained=)')


def install_peft_state(model: nn.Module, base_checkpoint, load_base):
    """Save trainable weights only; load them back over the base checkpoint.

    Args:
        model (nn.Module): the whole model (classifier, segmentor ...), the
            module whose ``state_dict`` the checkpoints hold.
        base_checkpoint (Callable[[], str | None]): returns the name of the
            checkpoint the frozen weights come from (called at save and
            load time, e.g. ``lambda: backbone.pretrained``).
        load_base (Callable[[str], None]): loads that checkpoint's weights
            into ``model`` in place (e.g. ``load_vit_checkpoint`` of the
            backbone).

    A tuned-only state dict records the base's name and the fingerprint of
    the frozen weights (:func:`weights_fingerprint`). On load, the model's
    own ``base_checkpoint()`` (the config's ``pretrained``) wins over the
    recorded name; the log says which file was used. A tuned-only state dict
    without a fingerprint (older checkpoints) loads with a warning naming the
    base it is loaded over and the recorded one: nothing can be checked.

    Raises (at load time):
        ValueError: the state dict lacks trainable weights or has foreign
            keys (:func:`check_own_keys`); it lacks frozen weights and names
            no base checkpoint (and the model has none either); or the base
            file's frozen weights differ from the ones the checkpoint was
            trained on (both files named).
    """

    def keep_trainable(module, state_dict, prefix, local_metadata):
        base = base_checkpoint()
        if base is None:
            return
        frozen = frozen_parameter_names(module)
        for name in frozen:
            state_dict.pop(prefix + name, None)
        local_metadata[PEFT_METADATA_KEY] = base
        local_metadata[PEFT_FINGERPRINT_KEY] = weights_fingerprint(module, frozen)

    def fill_frozen(module, state_dict, prefix, local_metadata, strict,
                    missing_keys, unexpected_keys, error_msgs):
        upgrade_legacy_keys(state_dict)
        check_own_keys(module, state_dict, prefix)
        missing = [name for name in frozen_parameter_names(module)
                   if prefix + name not in state_dict]
        if not missing:
            return
        recorded = local_metadata.get(PEFT_METADATA_KEY)
        base = base_checkpoint() or recorded
        if base is None:
            raise ValueError(
                f'the state dict lacks {len(missing)} frozen weights (e.g. '
                f'{missing[:3]}) and names no base checkpoint: save the PEFT run '
                'with a pretrained checkpoint set, or load a full checkpoint')
        MMLogger.get_current_instance().info(
            f'Tuned-only checkpoint: frozen weights from {base}'
            + (f' (the checkpoint was trained on {recorded})' if recorded != base else ''))
        load_base(base)
        expected = local_metadata.get(PEFT_FINGERPRINT_KEY)
        if expected is None:
            MMLogger.get_current_instance().warning(
                f'the tuned-only checkpoint records no fingerprint of its base weights '
                f'({PEFT_FINGERPRINT_KEY}; written before mmdyt recorded one, or edited): '
                f'its frozen weights are loaded from {base} ('
                + (f'the checkpoint names {recorded} as its base' if recorded else
                   'the checkpoint names no base')
                + f') unchecked; if {base} is not the base it was trained on, the model '
                'predicts wrongly. Save the checkpoint again from a run on its base to '
                'record one')
        found = expected and weights_fingerprint(module, missing)
        if expected is not None and found != expected:
            raise ValueError(
                f'the base weights in {base} differ from those the tuned-only checkpoint '
                f'was trained on (recorded base: {recorded}; sha256 of the frozen weights '
                f'{found[:12]} != {expected[:12]}): give the '
                'original base checkpoint as the backbone\'s pretrained=')
        own = dict(module.named_parameters())
        for name in missing:
            state_dict[prefix + name] = own[name].detach()

    model._register_state_dict_hook(keep_trainable)
    model._register_load_state_dict_pre_hook(fill_frozen, with_module=True)
    return model
