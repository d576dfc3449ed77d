"""What the three token reductions share: the per-block hook the ViT block
calls, the backbone checks and the switch that turns a reduction off (for a
dense teacher pass). Their attention is the block's own
(:class:`~mmdyt.models.layers.Attention`, with ``return_qk``)."""
import contextlib

import torch
import torch.nn as nn


def check_layers(layers, num_layers, method):
    """``layers`` as a sorted tuple of distinct block indices in range."""
    layers = tuple(layers)
    if not layers or any(not 0 <= i < num_layers for i in layers) or \
            len(set(layers)) != len(layers):
        raise ValueError(f'{method}: layers must be distinct block indices in '
                         f'[0, {num_layers}), got {layers}')
    return tuple(sorted(layers))


def default_layers(num_layers):
    """EViT's and DynamicViT's stages, 1/4, 1/2 and 3/4 of the depth
    (ViT-B: blocks 3, 6, 9, i.e. the 4th, 7th and 10th)."""
    return tuple(sorted({num_layers * k // 4 for k in (1, 2, 3)}))


def check_rate(value, name, method):
    if not 0 < value <= 1:
        raise ValueError(f'{method}: {name} must be in (0, 1], got {value}')
    return float(value)


def token_counts(record):
    """Tokens per sample of each block of a forward ``record``: list of
    (block index, entering the block, attention, MLP); DynamicViT prunes
    between entering and attention, ToMe and EViT between attention and
    MLP."""
    return [(b.index, b.part_tokens.get('predictor', b.num_tokens - 1) + 1, b.num_tokens,
             b.tokens('mlp')) for b in record.blocks]


class BlockHook:
    """One block forward of a token reduction: the block calls
    :meth:`enter` on its input, :meth:`delta` for each part's update
    function and :meth:`after` on each part's output. It keeps the state of
    this forward only (tokens sizes, policies) and hands the keys in
    ``CARRIED`` to the next block through ``record.carry``.

    Args:
        block (DyTBlock): the block.
        record (BlockRecord): this block's record.
        previous (BlockRecord | None): the record of the block before.
    """

    CARRIED = ()

    def __init__(self, block, record, previous):
        self.block = block
        self.record = record
        carried = {key: value for key, value in
                   (previous.carry.items() if previous is not None else ()) if key in self.CARRIED}
        record.carry.update(self._rows_still_running(carried, record, previous))
        self.carry = record.carry

    @staticmethod
    def _rows_still_running(carried, record, previous):
        """``carried`` with its per-sample tensors cut to the rows of this
        block (``record.rows``) when samples left after ``previous`` (early
        exits: the batch shrinks between stages)."""
        if previous is None or record.rows is None or (
                previous.rows is not None and previous.rows.numel() == record.rows.numel()):
            return carried
        keep = record.rows if previous.rows is None else \
            torch.searchsorted(previous.rows, record.rows)
        return {key: (value.index_select(0, keep.to(value.device))
                      if torch.is_tensor(value) and value.ndim else value)
                for key, value in carried.items()}

    def enter(self, x):
        return x

    def delta(self, part, delta):
        return delta

    def after(self, part, x):
        return x


class TokenReduction(nn.Module):
    """Base of ToMe, EViT and DynamicViT, built by
    :func:`build_token_reduction` for a :class:`DyTVisionTransformer`.

    Attributes:
        enabled (bool): False runs the plain backbone (the dense teacher of
            DynamicViT's distillation, :func:`reduction_disabled`).
    """

    HOOK = BlockHook
    #: Weight of the distillation from a teacher pass without reduction
    #: (DynamicViT's); 0 = no teacher pass.
    distill_weight = 0.0

    def __init__(self):
        super().__init__()
        self.enabled = True

    @staticmethod
    def check_backbone(backbone, method):
        """Refuse backbone settings the reduction does not support."""
        if backbone.dispatch not in (None, 'mlp'):
            raise ValueError(f"token_reduction {method!r} needs dispatch None or 'mlp' "
                             f'(merged / pruned tokens between attention and MLP), got '
                             f'dispatch={backbone.dispatch!r}')
        if backbone.family_settings['rope']:
            raise ValueError(f'token_reduction {method!r} cannot be combined with rope=True: '
                             'merged and fused tokens have no position to rotate by')
        if not backbone.class_token:
            raise ValueError(f'token_reduction {method!r} keeps and ranks tokens by the class '
                             'token: it cannot be combined with class_token=False')
        if backbone.num_prompts or backbone.num_registers:
            raise ValueError(f'token_reduction {method!r} protects the class token only: it '
                             'cannot be combined with VPT prompts or register tokens '
                             f'(num_prompts={backbone.num_prompts}, '
                             f'num_registers={backbone.num_registers})')
        if backbone.rel_pos_bias:
            raise ValueError(f'token_reduction {method!r} cannot be combined with '
                             'rel_pos_bias=True: the relative position bias indexes the '
                             'class token and the full patch grid, which merged, fused or '
                             'pruned tokens no longer form')
        if backbone.out_type != 'cls_token':
            raise ValueError(f"token_reduction {method!r} needs out_type='cls_token': "
                             'dense outputs need every token in place, got out_type='
                             f'{backbone.out_type!r}')

    def block_hook(self, block, record, previous):
        """The :class:`BlockHook` of one block forward, or None when
        disabled."""
        return self.HOOK(self, block, record, previous) if self.enabled else None

    def flops(self, block, record):
        """Per-sample multiply-adds of the reduction itself in the block
        ``record`` describes (matching, fusing, predicting)."""
        return 0

    def losses(self, record):
        """Losses of a training forward's record (DynamicViT's ratio loss)."""
        return {}


@contextlib.contextmanager
def reduction_disabled(reduction):
    """Within the block, ``reduction`` leaves every token in place."""
    previous = reduction.enabled
    reduction.enabled = False
    try:
        yield
    finally:
        reduction.enabled = previous
