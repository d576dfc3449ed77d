"""The DyT ViT applied frame by frame to a clip (video recognition)."""
from mmengine.registry import MODELS

from ..record import ForwardRecord
from .dyt_vit import DyTVisionTransformer


@MODELS.register_module()
class FrameDyTVisionTransformer(DyTVisionTransformer):
    """:class:`DyTVisionTransformer` on (N, C, T, H, W) clips.

    The T frames are folded into the batch, so every frame is dispatched on
    its own and, in eval mode, really skips its deactivated tokens. Takes
    every argument of :class:`DyTVisionTransformer` except ``out_type`` and
    ``out_indices``: the output is the final (normed) token sequence of every
    frame, class token first, VPT prompts left out.

    Shapes:
        x: (N, C, T, H, W) -> (N, T, 1 + h * w, C_embed)

    The record's masks are per frame, (N * T, L) each, and its
    ``clip_shape`` is (N, T); :meth:`flops` is per clip.
    """

    def __init__(self, **kwargs):
        for key in ('out_type', 'out_indices'):
            if key in kwargs:
                raise ValueError(f'{key} is fixed for {type(self).__name__}: it '
                                 'returns the last token sequence of every frame')
        super().__init__(out_type='raw', out_indices=-1, **kwargs)

    def forward(self, x, record=None):
        """(N, C, T, H, W) -> (N, T, L, C_embed) tokens of every frame."""
        self.warn_if_unrecorded(record)
        record = ForwardRecord() if record is None else record
        tokens = self.run_blocks(self.embed_clips(x, record), record)
        self.warn_on_overflow(record)
        return self.clip_tokens(tokens, record)

    def embed_clips(self, x, record):
        """(N, C, T, H, W) clips -> (N * T, 1 + h * w, C_embed) frame tokens
        (:meth:`embed` of every frame); ``record.clip_shape`` = (N, T)."""
        if x.ndim != 5:
            raise ValueError(f'{type(self).__name__} expects (N, C, T, H, W) clips, '
                             f'got shape {tuple(x.shape)}')
        record.clip_shape = (x.shape[0], x.shape[2])
        return self.embed(x.transpose(1, 2).flatten(0, 1), record)

    def clip_tokens(self, x, record):
        """(n * T, fixed + h * w, C) block output -> (n, T, 1 + h * w, C)."""
        return self.format_output(x, record.grid).unflatten(0, (-1, record.clip_shape[1]))

    def format_output(self, x, grid):
        """(B, fixed + h * w, C) -> (B, 1 + h * w, C): class and patch tokens."""
        if not self.num_prompts:
            return x
        return x[:, [0] + list(range(self.num_fixed_tokens, x.shape[1]))]

    def flops(self, record, stop=None):
        """(N,) multiply-adds per clip: the sum over its frames of the tokens
        each frame actually computed."""
        return record.per_clip(super().flops(record, stop)).sum(1)

    def clip_rates(self, record):
        """(N, num_dispatchers) activation rate of each clip (mean over its
        frames and patch tokens), or None without dispatchers."""
        rates = record.per_sample_rates()
        return None if rates is None else record.per_clip(rates).mean(1)
