"""What every DyT backbone (the ViT, Swin, ...) offers the task glue, the
hooks and the tools."""
import warnings

import torch.nn as nn
from mmengine.model import BaseModule

from .checkpoint import pop_pretrained_init

#: The mmdyt task model that applies the rate loss, per toolbox model.
TASK_MODELS = ('DyTImageClassifier (for mmpretrain ImageClassifier), DyTEncoderDecoder '
               '(mmseg EncoderDecoder) or DyTRecognizer3D (mmaction Recognizer3D)')


class DyTBackbone(BaseModule):
    """Base of the backbones with token dispatchers and PEFT modules.

    A subclass builds its modules, then calls :meth:`_set_trainable`; it
    has ``blocks`` (each with ``attn``, ``mlp`` and a ``dispatchers`` dict) and
    implements :meth:`flops_by_part` (from the :class:`~mmdyt.models.record.ForwardRecord`
    its forward fills) and :meth:`load_pretrained`.

    Args:
        pretrained (str | None): the base checkpoint the frozen weights come
            from (loaded by :meth:`init_weights`; tuned-only checkpoints name
            it).
        freeze_pretrained (bool): freeze the pretrained weights (PEFT).
        init_cfg (dict | list | None): mmengine's; a ``dict(type='Pretrained',
            checkpoint=..., prefix=...)`` entry is taken as ``pretrained``
            (through :meth:`load_pretrained`'s key mapping and checks).

    A state dict whose tensors do not fit the backbone (another arch, patch
    or window size) is refused by whichever loader is used (mmengine loads
    with ``strict=False`` and would only warn).
    """

    #: Substrings of the parameter names of PEFT modules; anything else is a
    #: pretrained weight (frozen unless ``freeze_pretrained=False``).
    TUNING_KEYS = ('adapters.', 'dispatchers.', 'lora_', 'prompts', 'petl_')

    def __init__(self, pretrained=None, freeze_pretrained=True, init_cfg=None):
        init_cfg, pretrained_init = pop_pretrained_init(init_cfg)
        if pretrained_init is not None:
            if pretrained is not None:
                raise ValueError('set the pretrained checkpoint once: pretrained= or '
                                 "init_cfg=dict(type='Pretrained', ...), not both")
            pretrained = pretrained_init['checkpoint']
        super().__init__(init_cfg=init_cfg)
        self.pretrained = pretrained
        self.pretrained_prefix = pretrained_init.get('prefix') if pretrained_init else None
        self.freeze_pretrained = freeze_pretrained
        self.register_load_state_dict_pre_hook(self._check_state_dict)

    @staticmethod
    def parse_arch(arch, archs, aliases, keys, family):
        """The settings dict of ``arch``: a name of ``archs`` (or of
        ``aliases``), or a dict with exactly the ``keys``.

        Raises:
            ValueError: an unknown name, or a dict with missing or unknown
                keys, naming the ``family`` ('ViT', 'Swin', ...).
        """
        if isinstance(arch, str):
            key = aliases.get(arch.lower(), arch.lower())
            if key not in archs:
                raise ValueError(f'{family} arch must be one of {sorted(archs)} or a dict, '
                                 f'got {arch!r}')
            return dict(archs[key])
        if not isinstance(arch, dict) or set(arch) != set(keys):
            raise ValueError(f'a custom {family} arch must be a dict with keys {sorted(keys)}, '
                             f'got {arch!r}')
        return dict(arch)

    @staticmethod
    def check_positive_int(**values):
        """Refuse any of ``values`` (name -> value) that is not an int >= 1
        (None passes: "none"), naming it."""
        for name, value in values.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ValueError(f'{name} must be an int >= 1, got {value!r}')

    def check_input(self, x, in_channels):
        """Refuse an input that is not a (B, in_channels, H, W) image batch,
        naming its shape."""
        if x.ndim != 4 or x.shape[1] != in_channels:
            raise ValueError(f'{type(self).__name__} takes (B, {in_channels}, H, W) images, got '
                             f'shape {tuple(x.shape)}')

    def __prepare_scriptable__(self):
        """``torch.jit.script`` calls this first: refuse with the ways that
        work instead of failing deep inside TorchScript."""
        raise RuntimeError(
            f'{type(self).__name__} cannot be compiled with torch.jit.script (the skipping path '
            'has data-dependent shapes TorchScript does not support): use torch.export / '
            'tools/deployment/export_onnx.py (the skipping kept) or torch.compile '
            '(mmdyt.deploy.compile)')

    @staticmethod
    def check_out_indices(out_indices, count, unit):
        """``out_indices`` (int or sequence) as a list of indices in [0,
        ``count``) of the backbone's ``unit`` ('blocks', 'stages').

        Raises:
            ValueError: an index outside [-count, count), or one named twice
                (e.g. -1 and the last).
        """
        indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        if not indices or not all(isinstance(i, int) for i in indices):
            raise ValueError(f'out_indices must be an int or a non-empty sequence of ints, got '
                             f'{out_indices!r}')
        outside = [i for i in indices if not -count <= i < count]
        if outside:
            raise ValueError(f'out_indices {outside} outside [-{count}, {count}) for {count} '
                             f'{unit}')
        normalized = [i % count for i in indices]
        if len(set(normalized)) != len(normalized):
            raise ValueError(f'out_indices {indices} name one of the {unit} twice ({unit} '
                             f'{normalized})')
        return normalized

    @staticmethod
    def check_drop_path_rate(drop_path_rate):
        """Refuse a stochastic depth outside [0, 1) (1 drops every block: NaN
        outputs)."""
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'drop_path_rate must be in [0, 1), got {drop_path_rate} (1 drops '
                             'every block: NaN outputs)')

    @staticmethod
    def check_choices(dispatch, dispatch_choices, out_type, out_types, adapter_dim,
                      dispatch_note=''):
        """Refuse a ``dispatch`` or ``out_type`` outside the backbone's choices,
        and dispatch without adapters (skipped tokens get the adapter only)."""
        if not (dispatch is None or isinstance(dispatch, str)) or dispatch not in dispatch_choices:
            raise ValueError(f'{dispatch_note}dispatch must be one of {tuple(dispatch_choices)}, '
                             f'got {dispatch!r}')
        if out_type not in out_types:
            raise ValueError(f'out_type must be one of {tuple(out_types)}, got {out_type!r}')
        if dispatch is not None and adapter_dim is None:
            raise ValueError('adapter_dim must be set when dispatch is used: '
                             'skipped tokens are updated by the adapter only')

    def init_weights(self):
        """Load ``pretrained`` (if any), else mmengine's ``init_cfg``."""
        if self.pretrained is not None:
            self.load_pretrained(self.pretrained)
        elif self.init_cfg is not None:
            super().init_weights()

    def upgrade_state_dict(self, state_dict):
        """Rename, in place, keys of checkpoints written by earlier releases
        (none here)."""

    def _check_state_dict(self, module, state_dict, prefix, *args):
        self.upgrade_state_dict(state_dict)
        own = dict(self.named_parameters())
        own.update(self.named_buffers())
        for name, tensor in own.items():
            value = state_dict.get(prefix + name)
            if value is not None and value.shape != tensor.shape:
                raise ValueError(
                    f'checkpoint does not fit the model: {prefix}{name} has shape '
                    f'{tuple(value.shape)} in the checkpoint and {tuple(tensor.shape)} '
                    'in the model (another arch, patch or window size?)')

    @classmethod
    def is_tuning_parameter(cls, name):
        """Whether a parameter belongs to the PEFT modules (not the backbone)."""
        return any(key in name for key in cls.TUNING_KEYS)

    def _set_trainable(self):
        if not self.freeze_pretrained:
            return
        for name, param in self.named_parameters():
            param.requires_grad = self.is_tuning_parameter(name)

    def dispatchers(self):
        """All token dispatchers, block by block (``self.blocks``, each with a
        ``dispatchers`` dict), in :meth:`dispatcher_names` order."""
        return [d for block in self.blocks for d in block.dispatchers.values()]

    def dispatcher_names(self):
        """``blocks.{i}.{part}`` of every dispatcher (global block index): the
        names the forward record gives their masks."""
        return [f'blocks.{i}.{part}' for i, block in enumerate(self.blocks)
                for part in block.dispatchers]

    def init_block_linears(self):
        """Truncated-normal (0.02) weights and zero biases for the attention
        and MLP linears of every block (the pretrained weights replace them)."""
        for block in self.blocks:
            layers = [block.attn.qkv, block.attn.proj]
            layers += [m for m in block.mlp.modules() if isinstance(m, nn.Linear)]
            for layer in layers:
                nn.init.trunc_normal_(layer.weight, std=0.02)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)

    def warn_if_unrecorded(self, record):
        """Warn (once per class) when this backbone trains its dispatchers
        without a record, i.e. inside a plain toolbox model that adds no rate
        loss: the gates then drift to whatever the task loss prefers. A
        forward with every dispatcher forced dense (the teacher of
        self-distillation) has no gate to train and does not warn."""
        dispatchers = self.dispatchers()
        if record is not None or not self.training or type(self) in _WARNED \
                or all(d.force_all_active for d in dispatchers):
            return
        _WARNED.add(type(self))
        warnings.warn(
            f'{type(self).__name__} with token dispatchers is training inside a model that '
            f'passes it no ForwardRecord, so no rate loss (Eq. 8) is applied: use mmdyt\'s '
            f"{TASK_MODELS} with rate_loss=dict(type='ActivationRateLoss', target_rate=...)",
            UserWarning, stacklevel=3)

    def load_pretrained(self, checkpoint):
        """Load pretrained weights (a file path or a read state dict)."""
        raise NotImplementedError

    def flops_by_part(self, record, stop=None):
        """dict part -> (B,) float64 multiply-adds of the forward ``record``
        describes (blocks before ``stop`` only, when given)."""
        raise NotImplementedError

    def flops(self, record, stop=None):
        """(B,) float64 multiply-adds per sample: :meth:`flops_by_part` summed."""
        return sum(self.flops_by_part(record, stop).values())


_WARNED = set()
