"""EViT (Liang et al., ICLR 2022): at given blocks, between attention and
MLP, keep the ``ceil(keep_rate x n)`` patch tokens the class token attends
to most (attention averaged over heads) and fuse the others into one token,
their sum weighted by that attention. The sequence really gets shorter."""
import math

import torch

from ..flops import attention_matmul_flops
from .base import BlockHook, TokenReduction, check_layers, check_rate, default_layers


def class_attention(q, k):
    """(B, n) attention of the class token to the patch tokens, averaged
    over heads; q, k: (B, heads, N, d)."""
    logits = q[:, :, :1] @ k.transpose(-2, -1) * q.shape[-1]**-0.5
    return logits.softmax(-1)[:, :, 0, 1:].mean(1)


def keep_and_fuse(x, attention, keep_rate):
    """EViT's token reorganisation.

    Args:
        x (Tensor): (B, 1 + n, C) tokens, class token first.
        attention (Tensor): (B, n) class-token attention of the patch tokens.
        keep_rate (float): in (0, 1].

    Returns:
        Tensor: (B, 2 + k, C) with k = ceil(keep_rate x n): the class token,
        the k most attended tokens (by attention) and the fused one; ``x``
        itself when k = n.
    """
    num_patches = x.shape[1] - 1
    keep = math.ceil(keep_rate * num_patches)
    if keep >= num_patches:
        return x
    patches = x[:, 1:]
    index = attention.topk(keep, dim=1).indices
    kept = torch.zeros_like(attention, dtype=torch.bool).scatter_(1, index, True)
    chosen = patches.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))
    rest = patches[~kept].view(x.shape[0], num_patches - keep, x.shape[-1])
    weights = attention[~kept].view(x.shape[0], num_patches - keep, 1)
    return torch.cat([x[:, :1], chosen, (rest * weights).sum(1, keepdim=True)], 1)


class EViTHook(BlockHook):

    def __init__(self, evit, block, record, previous):
        super().__init__(block, record, previous)
        self.keep_rate = evit.keep_rate if record.index in evit.layers else 1.0
        self.attention = None

    def delta(self, part, delta):
        if part != 'attn' or self.keep_rate == 1.0:
            return delta

        def evit_attention(tokens, key_mask=None, packed=None, positions=None):
            out, q, k = self.block.attn(self.block.norm1(tokens), return_qk=True)
            self.attention = class_attention(q, k)
            return out

        return evit_attention

    def after(self, part, x):
        if part != 'attn' or self.keep_rate == 1.0:
            return x
        x = keep_and_fuse(x, self.attention, self.keep_rate)
        self.record.part_tokens['mlp'] = x.shape[1]
        return x


class EViT(TokenReduction):
    """Attentive token keeping with one fused token.

    Args:
        num_layers (int): blocks of the backbone.
        keep_rate (float): fraction of patch tokens kept, in (0, 1].
        layers (Sequence[int] | None): blocks that reduce (0-based); None =
            1/4, 1/2 and 3/4 of the depth (ViT-B: 3, 6, 9).
    """

    HOOK = EViTHook

    def __init__(self, num_layers, keep_rate=0.7, layers=None):
        super().__init__()
        self.keep_rate = check_rate(keep_rate, 'keep_rate', 'evit')
        self.layers = check_layers(default_layers(num_layers) if layers is None else layers,
                                   num_layers, 'evit')

    def flops(self, block, record):
        """The class-token attention row (N x C) and the fused token's
        weighted sum ((n - k) x C) where the block reduced, each one
        attention-like product (half of :func:`attention_matmul_flops`)."""
        if 'mlp' not in record.part_tokens:
            return 0
        dims = block.attn.proj.in_features
        fused = record.num_tokens - record.part_tokens['mlp'] + 1
        return (attention_matmul_flops(1, record.num_tokens, dims) +
                attention_matmul_flops(1, fused, dims)) // 2
