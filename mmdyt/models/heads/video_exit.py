"""Early-exit head for video (Dyn-Adapter Table 7): the cross-attention
query over a stage's frame tokens, then an :class:`ExitHead`."""
import torch.nn as nn

from ..layers import CrossAttentionQuery
from .early_exit import ExitHead


class VideoExitHead(nn.Module):
    """One learnable query attends to every token of every frame of a clip;
    an :class:`ExitHead` (linear or MLP, head balance) classifies it.

    Args:
        in_channels (int): C.
        num_classes (int): K.
        num_heads (int): heads of the cross-attention.
        **spec: :class:`ExitHead` arguments (``type``, ``hidden_dims``,
            ``dropout``, ``norm``).

    Shapes:
        x: (N, T, L, C) tokens of every frame -> logits (N, K)
    """

    def __init__(self, in_channels, num_classes, num_heads=12, **spec):
        super().__init__()
        self.query = CrossAttentionQuery(in_channels, num_heads)
        self.classifier = ExitHead(in_channels, num_classes, **spec)

    def forward(self, x):
        return self.classifier(self.query(x.flatten(1, 2)))

    def flops(self, num_tokens):
        """Multiply-adds per clip for ``num_tokens`` (T x L) tokens."""
        return self.query.flops(num_tokens) + self.classifier.flops()
