"""The model :func:`~mmdyt.api.get_dyt_model` returns: a DyT backbone and
the given model's classifier head, with the rate loss, the FLOPs and the
tuned-only checkpoints of a PEFT run as methods."""
import os
import warnings

import torch
import torch.nn as nn

from ..models.flops import layer_norm_flops, linear_layers_flops
from ..models.losses import ActivationRateLoss
from ..models.peft_state import PEFT_FINGERPRINT_KEY, weights_fingerprint
from ..models.record import ForwardRecord
from ..version import __version__

#: Parameter group -> the test of a parameter's name (the first group that
#: matches wins; anything else trainable is 'other': VPT prompts, a relative
#: position bias, token-reduction predictors, or every weight under full
#: tuning).
PARAMETER_GROUPS = {
    'head': lambda name: name.startswith('head.'),
    'adapters': lambda name: 'adapters.' in name,
    'dispatchers': lambda name: 'dispatchers.' in name,
    'petl': lambda name: 'lora_' in name or 'petl_' in name,
}
#: The groups in the order they are reported.
GROUP_ORDER = ('adapters', 'dispatchers', 'petl', 'head', 'other')
#: ``format`` entry of the metadata :meth:`DyTModel.save_tuned` writes.
TUNED_FORMAT = 'mmdyt-tuned'


def parameter_group(name):
    """The :data:`PARAMETER_GROUPS` entry of parameter ``name``, else 'other'."""
    return next((group for group, test in PARAMETER_GROUPS.items() if test(name)), 'other')


def head_flops(head):
    """Per-sample multiply-adds of a classifier head on one pooled feature:
    its linear layers and LayerNorms (dropout and activations are free)."""
    norms = sum(layer_norm_flops(m, 1) for m in head.modules() if isinstance(m, nn.LayerNorm))
    return linear_layers_flops(head) + norms


class DyTModel(nn.Module):
    """A DyT backbone and a classifier head: ``head(backbone(x)[-1])``.

    Built by :func:`~mmdyt.api.get_dyt_model`. The backbone's pretrained
    weights are frozen; its adapters, dispatchers and PETL modules and the
    head are trainable. In evaluation mode the deactivated tokens really skip
    their blocks (the backbone's ``skip_inactive``).

    Args:
        backbone (DyTVisionTransformer): the backbone, pooled output
            (``out_type`` 'cls_token', 'avg_featmap' or 'map').
        head (nn.Module): pooled feature (B, C) -> logits (B, K).
        target_rate (float | None): r of the activation-rate loss (Eq. 8);
            None = not set (:meth:`rate_loss` refuses).
        rate_loss_weight (float): alpha of the rate loss (2.0 in the paper).

    No module keeps anything of a forward: ``forward(x, return_record=True)``
    returns the :class:`~mmdyt.models.record.ForwardRecord` that
    :meth:`rate_loss` and :meth:`flops` read.
    """

    def __init__(self, backbone, head, target_rate=None, rate_loss_weight=2.0):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.rate_loss_weight = rate_loss_weight
        self.target_rate = target_rate

    @property
    def target_rate(self):
        """r of the rate loss; settable (e.g. a schedule)."""
        return self._target_rate

    @target_rate.setter
    def target_rate(self, value):
        if value is not None:
            if not self.backbone.dispatchers():
                raise ValueError('target_rate needs token dispatchers, and this model has '
                                 'none (dispatch=None): leave target_rate unset')
            ActivationRateLoss(value)  # checks the range
        self._target_rate = value

    def forward(self, x, return_record=False):
        """(B, 3, H, W) normalised images -> (B, K) logits; with
        ``return_record`` ``(logits, record)``, the backbone's
        :class:`~mmdyt.models.record.ForwardRecord` of this forward."""
        if not return_record and self.training and self.backbone.dispatchers() and \
                not all(d.force_all_active for d in self.backbone.dispatchers()):
            warnings.warn('DyTModel is training its token dispatchers without '
                          'return_record=True, so no rate loss can be added: use '
                          'logits, record = model(x, return_record=True) and '
                          'loss = task_loss + model.rate_loss(record)', UserWarning,
                          stacklevel=2)
        record = ForwardRecord()
        logits = self.head(self.backbone(x, record=record)[-1])
        return (logits, record) if return_record else logits

    def rate_loss(self, record):
        """The activation-rate loss (Eq. 8) of a forward's ``record``:
        ``alpha * (mean activation of the patch tokens - r) ** 2``, a scalar
        with the gradient of the dispatchers' straight-through masks."""
        if self.target_rate is None:
            raise ValueError('rate_loss needs a target rate: get_dyt_model(..., '
                             'target_rate=r) or model.target_rate = r')
        loss = ActivationRateLoss(self.target_rate, self.rate_loss_weight)
        return loss(record.masks(), record.num_fixed_tokens)

    def flops(self, record):
        """(B,) float64 multiply-adds per sample of the forward ``record``
        describes: the backbone's (only the tokens that ran) plus the head's."""
        return self.backbone.flops(record) + head_flops(self.head)

    # ---- parameters ------------------------------------------------------
    def trainable_parameters(self):
        """Counts of parameters: ``trainable`` and ``all``, and the trainable
        ones by group (``adapters``, ``dispatchers``, ``petl``, ``head``,
        ``other``; :data:`PARAMETER_GROUPS`)."""
        counts = dict.fromkeys(GROUP_ORDER, 0)
        total = 0
        for name, param in self.named_parameters():
            total += param.numel()
            if param.requires_grad:
                counts[parameter_group(name)] += param.numel()
        return dict(trainable=sum(counts.values()), all=total, **counts)

    def print_trainable_parameters(self):
        """Print ``trainable params: X || all params: Y || trainable%: Z``
        (as PEFT does) and the trainable ones by group."""
        counts = self.trainable_parameters()
        share = 100 * counts['trainable'] / counts['all'] if counts['all'] else 0.0
        print(f"trainable params: {counts['trainable']:,d} || all params: {counts['all']:,d} "
              f'|| trainable%: {share:.4f}')
        print('  ' + ' || '.join(f'{group}: {counts[group]:,d}'
                                 for group in GROUP_ORDER))

    # ---- tuned-only checkpoints -------------------------------------------
    def tuned_state_dict(self):
        """The trainable parameters (name -> detached tensor on the CPU) and
        the metadata :meth:`save_tuned` writes with them: the format, the
        mmdyt version and the sha256 of every other parameter (the base
        weights, :func:`~mmdyt.models.peft_state.weights_fingerprint`)."""
        state, base = {}, []
        for name, param in self.named_parameters():
            if param.requires_grad:
                state[name] = param.detach().cpu().contiguous()
            else:
                base.append(name)
        metadata = {'format': TUNED_FORMAT, 'mmdyt_version': __version__,
                    PEFT_FINGERPRINT_KEY: weights_fingerprint(self, base)}
        return state, metadata

    def save_tuned(self, path):
        """Write only the trainable weights (adapters, dispatchers, PETL, head)
        and the fingerprint of the base weights: a safetensors file when
        ``path`` ends with ``.safetensors``, else ``torch.save`` of
        ``{'state_dict': ..., 'metadata': ...}``."""
        state, metadata = self.tuned_state_dict()
        path = os.fspath(path)
        if path.endswith('.safetensors'):
            from safetensors.torch import save_file
            save_file(state, path, metadata=metadata)
        else:
            torch.save({'state_dict': state, 'metadata': metadata}, path)

    def load_tuned(self, path):
        """Load a :meth:`save_tuned` file into this model (built by
        :func:`~mmdyt.api.get_dyt_model` from the same base model and
        settings); returns the model.

        Raises:
            ValueError: the file is no ``save_tuned`` file, lacks a trainable
                weight of this model, holds a weight it does not have or of
                another shape, or was tuned on other base weights (their
                sha256 differ).
        """
        state, metadata = read_tuned(path)
        own = dict(self.named_parameters())
        missing = [name for name, param in own.items()
                   if param.requires_grad and name not in state]
        unexpected = sorted(name for name in state if name not in own)
        shapes = [f'{name} {tuple(state[name].shape)} vs {tuple(own[name].shape)}'
                  for name in state if name in own and state[name].shape != own[name].shape]
        problems = [text for text, items in (
            (f'lacks {len(missing)} trainable weights of the model, e.g. {missing[:3]}', missing),
            (f'has {len(unexpected)} weights the model lacks, e.g. {unexpected[:3]}',
             unexpected),
            (f'has weights of another shape (file vs model): {shapes[:3]}', shapes)) if items]
        if problems:
            raise ValueError(f'{path} does not fit this model: it {"; it ".join(problems)} '
                             '(tuned with other get_dyt_model settings?)')
        expected = metadata.get(PEFT_FINGERPRINT_KEY)
        base = [name for name in own if name not in state]
        found = weights_fingerprint(self, base)
        if expected != found:
            raise ValueError(f'{path} was tuned on other base weights (sha256 of the frozen '
                             f'weights {str(expected)[:12]} in the file, {found[:12]} in this '
                             'model): build the model from the same pretrained weights')
        with torch.no_grad():
            for name, tensor in state.items():
                own[name].copy_(tensor)
        return self


def read_tuned(path):
    """``(state, metadata)`` of a :meth:`DyTModel.save_tuned` file; no code
    in the file runs (safetensors, or ``torch.load(weights_only=True)``)."""
    path = os.fspath(path)
    try:
        if path.endswith('.safetensors'):
            from safetensors import safe_open
            with safe_open(path, framework='pt', device='cpu') as file:
                metadata = file.metadata() or {}
                state = {key: file.get_tensor(key) for key in file.keys()}
        else:
            content = torch.load(path, map_location='cpu', weights_only=True)
            if not isinstance(content, dict) or set(content) != {'state_dict', 'metadata'}:
                raise ValueError('not a dict of state_dict and metadata')
            state, metadata = content['state_dict'], content['metadata']
    except FileNotFoundError:
        raise
    except Exception as error:  # noqa: BLE001 - any reader's error means the same
        raise ValueError(f'cannot read {path} as a DyTModel.save_tuned file '
                         f'({type(error).__name__}: {error})') from error
    if metadata.get('format') != TUNED_FORMAT:
        raise ValueError(f'{path} is not a DyTModel.save_tuned file (no format '
                         f'{TUNED_FORMAT!r} in its metadata)')
    return state, metadata
