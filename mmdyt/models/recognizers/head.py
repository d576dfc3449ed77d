"""Video classification head: one query token cross-attends to the tokens of
every frame, a linear classifier reads it (DyT Sec. 4.5)."""
import torch.nn as nn
from mmaction.models.heads import BaseHead
from mmaction.registry import MODELS

from ..layers import CrossAttentionQuery


@MODELS.register_module()
class CrossAttentionHead(BaseHead):
    """Cross-attention query head for per-frame token sequences.

    Args:
        num_classes (int): classes.
        in_channels (int): token width C.
        num_heads (int): heads of the cross-attention.
        dropout_ratio (float): dropout before the classifier.
        init_std (float): std of the classifier's initial weights.
        residual (bool): residual around the cross-attention (mmdyt's
            earlier form; the reference code has none).
        shared_kv_norm (bool): one LayerNorm for k and v (mmdyt's earlier
            form; the reference code has separate ones). Checkpoints of the
            earlier form need ``residual=True, shared_kv_norm=True``.
        average_clips (str | None): 'prob', 'score' or None, how the scores
            of a video's test views are combined (mmaction2 ``BaseHead``).
        **kwargs: other :class:`mmaction.models.heads.BaseHead` arguments
            (``loss_cls``, ``label_smooth_eps``, ``topk``, ...).

    Shapes:
        x: (N, T, L, C) tokens of every frame (or a tuple whose last item is
        that) -> (N, num_classes) class scores.
    """

    def __init__(self, num_classes, in_channels, num_heads=12, dropout_ratio=0.0,
                 init_std=0.02, average_clips='prob', residual=False, shared_kv_norm=False,
                 **kwargs):
        super().__init__(num_classes, in_channels, average_clips=average_clips, **kwargs)
        self.init_std = init_std
        self.cross_attn = CrossAttentionQuery(in_channels, num_heads, residual=residual,
                                              shared_kv_norm=shared_kv_norm)
        self.dropout = nn.Dropout(dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.fc_cls = nn.Linear(in_channels, num_classes)

    def init_weights(self):
        nn.init.trunc_normal_(self.fc_cls.weight, std=self.init_std)
        nn.init.zeros_(self.fc_cls.bias)

    def forward(self, x, **kwargs):
        """(N, T, L, C) -> (N, num_classes)."""
        if isinstance(x, (tuple, list)):
            x = x[-1]
        if x.ndim != 4:
            raise ValueError('CrossAttentionHead expects per-frame tokens (N, T, L, C), '
                             f'got shape {tuple(x.shape)}')
        tokens = x.flatten(1, 2)
        return self.fc_cls(self.dropout(self.cross_attn(tokens)))

    def flops(self, num_tokens):
        """Multiply-adds per clip for ``num_tokens`` (T x L) tokens: the
        cross-attention over them plus the classifier."""
        return self.cross_attn.flops(num_tokens) + self.in_channels * self.num_classes
