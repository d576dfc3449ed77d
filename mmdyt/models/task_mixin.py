"""The task mixin every toolbox's task glue (classifier, segmentor,
recognizer) shares: tuned-only checkpoints, the losses and log scalars of a
forward record, and the efficiency figures each prediction carries to the
metric."""
from mmengine.registry import MODELS

from .backbones.checkpoint import pop_pretrained_init
from .layers import all_tokens_active
from .losses import distillation_kl
from .peft_state import install_peft_state
from .record import record_forwards
from .task_model import require_dyt_backbone


def build_rate_loss(rate_loss):
    """A config dict (e.g. ``dict(type='ActivationRateLoss', target_rate=0.5)``)
    -> module; None -> None (no rate loss, e.g. for the baselines)."""
    return MODELS.build(rate_loss) if rate_loss is not None else None


def efficiency_log_vars(backbone, record):
    """Scalars of a training forward for the log: ``rate_layer{i}`` per
    dispatcher, their mean ``activation_rate`` and ``gflops`` per sample (no
    ``loss`` in their names, so mmengine logs them without summing them into
    the loss)."""
    rates = record.activation_rates()
    scalars = {f'rate_layer{i}': rate for i, rate in enumerate(rates)}
    if len(rates):
        scalars['activation_rate'] = rates.mean()
    scalars['gflops'] = backbone.flops(record).mean().float() / 1e9
    return scalars


class DyTTaskMixin:
    """The part of a toolbox model (classifier, segmentor, recognizer) that
    knows its DyT backbone.

    The subclass calls :meth:`init_dyt` at the end of ``__init__``. It gets
    ``rate_loss`` (Eq. 8, or None), tuned-only checkpoints
    (:func:`install_peft_state` over the backbone's ``pretrained``),
    :meth:`dyt_losses`: the rate loss of a forward record plus, when
    ``log_efficiency`` is on (:class:`ActivationLoggerHook` turns it on),
    its rates and GFLOPs as log scalars, and with ``distill``
    :meth:`distill_losses`, the self-distillation of the reference DyT code
    (the paper does not use it).
    """

    #: Keys of the ``distill`` setting.
    DISTILL_KEYS = ('loss_weight', 'teacher_weight')

    def init_dyt(self, rate_loss=None, distill=None):
        """``rate_loss``: config of the activation-rate loss or None;
        ``distill``: ``dict(loss_weight=1.0, teacher_weight=1.0)`` (weights
        of the KL term and of the teacher's loss) or None = off."""
        backbone = self.dyt_backbone
        self.init_cfg, pretrained_init = pop_pretrained_init(self.init_cfg)
        if pretrained_init is not None:
            if backbone.pretrained is not None:
                raise ValueError(f'{type(self).__name__}: both the model (pretrained= or '
                                 'init_cfg Pretrained) and the backbone set a pretrained '
                                 'checkpoint')
            backbone.pretrained = pretrained_init['checkpoint']
            backbone.pretrained_prefix = pretrained_init.get('prefix')
        self.rate_loss = build_rate_loss(rate_loss)
        if self.rate_loss is not None and not backbone.dispatchers():
            raise ValueError(f'{type(self).__name__}: rate_loss needs a backbone with token '
                             'dispatchers (dispatch is None): set rate_loss=None')
        if distill is not None and not backbone.dispatchers():
            raise ValueError(f'{type(self).__name__}: distill needs a backbone with token '
                             'dispatchers (dispatch is None): set it to None')
        if distill is not None and set(distill) - set(self.DISTILL_KEYS):
            raise ValueError(f'distill takes {list(self.DISTILL_KEYS)}, got {dict(distill)}')
        self.distill = None if distill is None else dict(distill)
        self.log_efficiency = False
        install_peft_state(self, lambda: backbone.pretrained, backbone.load_pretrained)

    @property
    def dyt_backbone(self):
        """The :class:`DyTBackbone` inside ``self.backbone``."""
        return require_dyt_backbone(self.backbone, type(self).__name__)

    def recorded(self, function, *args, **kwargs):
        """``function(*args, **kwargs)`` and the records of the backbone
        forwards it ran: (result, list of ForwardRecord)."""
        with record_forwards(self.dyt_backbone) as records:
            result = function(*args, **kwargs)
        return result, records

    def dyt_losses(self, record):
        """``loss_rate`` of ``record`` (when configured) and, with
        ``log_efficiency``, its log scalars."""
        losses = {}
        if self.rate_loss is not None:
            losses['loss_rate'] = self.rate_loss(record.masks(), record.num_fixed_tokens)
        if self.log_efficiency:
            losses.update(efficiency_log_vars(self.dyt_backbone, record))
        return losses

    def distill_losses(self, student_logits, teacher):
        """Self-distillation from a dense teacher: a second forward of the same
        network with every token active (``all_tokens_active``).

        Args:
            student_logits (Tensor): (B, K) of the student forward.
            teacher (callable): runs the teacher forward, returns its
                classification loss and its (B, K) logits.

        Returns:
            dict: ``loss_teacher`` (weighted teacher loss) and
            ``loss_distill`` (weighted KL(teacher || student), teacher
            detached); with the student's loss and ``loss_rate`` the
            reference's ``CE(student) + rate + CE(teacher) + KL``.
        """
        with all_tokens_active(self.dyt_backbone.dispatchers()):
            teacher_loss, teacher_logits = teacher()
        kl = distillation_kl(student_logits, teacher_logits.detach())
        return {'loss_teacher': self.distill.get('teacher_weight', 1.0) * teacher_loss,
                'loss_distill': self.distill.get('loss_weight', 1.0) * kl}


def attach_efficiency(data_samples, flops, rates=None, overflow=None):
    """Store per-sample backbone FLOPs (``dyt_flops``, float), per-layer
    activation rates (``dyt_rates``, (num_dispatchers,) tensor) and, in
    capacity mode, the active tokens left out (``dyt_overflow``, float) in
    each data sample's metainfo, where :class:`EfficiencyMetric` reads them.

    Args:
        data_samples (list): one data sample per prediction.
        flops (Tensor): (len(data_samples),) multiply-adds per sample.
        rates (Tensor | None): (len(data_samples), num_dispatchers).
        overflow (Tensor | None): (len(data_samples),) tokens left out.
    """
    for i, sample in enumerate(data_samples):
        meta = dict(dyt_flops=float(flops[i]))
        if rates is not None:
            meta['dyt_rates'] = rates[i]
        if overflow is not None:
            meta['dyt_overflow'] = float(overflow[i])
        sample.set_metainfo(meta)
    return data_samples
