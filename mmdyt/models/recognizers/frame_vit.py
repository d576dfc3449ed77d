"""The DyT ViT applied frame by frame to a clip."""
from mmaction.registry import MODELS

from ..backbones import DyTVisionTransformer
from ..task_utils import per_sample_rates


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

    ``masks()`` are per frame: (N * T, L) each. ``flops()`` and
    ``clip_rates()`` are per clip.
    """

    def __init__(self, **kwargs):
        for key in ('out_type', 'out_indices'):
            if key in kwargs:
                raise ValueError(f'{key} is fixed for {type(self).__name__}: it '
                                 'returns the last token sequence of every frame')
        super().__init__(out_type='raw', out_indices=-1, **kwargs)
        self._last_clip_shape = None

    def forward(self, x):
        """(N, C, T, H, W) -> (N, T, L, C_embed) tokens of every frame."""
        if x.ndim != 5:
            raise ValueError(f'{type(self).__name__} expects (N, C, T, H, W) clips, '
                             f'got shape {tuple(x.shape)}')
        num_clips, _, num_frames = x.shape[:3]
        frames = x.transpose(1, 2).flatten(0, 1)
        tokens = super().forward(frames)[0]
        self._last_clip_shape = (num_clips, num_frames)
        return tokens.unflatten(0, (num_clips, num_frames))

    def _format_output(self, x, grid):
        """(B, fixed + h * w, C) -> (B, 1 + h * w, C): class and patch tokens."""
        if not self.num_prompts:
            return x
        return x[:, [0] + list(range(self.num_fixed_tokens, x.shape[1]))]

    def frame_flops(self):
        """(N * T,) multiply-adds per frame of the last forward."""
        return super().flops()

    def flops(self):
        """(N,) multiply-adds per clip of the last forward: the sum over its
        frames of the tokens each frame actually computed."""
        if self._last_clip_shape is None:
            raise RuntimeError('flops() needs a forward pass first')
        return self.frame_flops().view(self._last_clip_shape).sum(1)

    def clip_rates(self):
        """(N, num_dispatchers) activation rate of each clip in the last
        forward (mean over its frames and patch tokens), or None."""
        rates = per_sample_rates(self)
        if rates is None:
            return None
        return rates.view(*self._last_clip_shape, -1).mean(1)
