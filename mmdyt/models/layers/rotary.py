"""2-D rotary position embeddings (EVA-02's axial RoPE, interleaved pairs).

The angles are a table over the positions of the whole sequence (leading
class / register / prompt tokens rotate by 0), so a token keeps its own
angles wherever it is gathered: the packed and capacity paths index the table
by the tokens' positions."""
import torch
import torch.nn as nn

from ..flops import elementwise_flops


class RotaryEmbedding2d(nn.Module):
    """Sine and cosine tables of axial 2-D RoPE.

    Args:
        head_dims (int): d, the width of one attention head (a multiple of 4):
            d / 4 frequencies per axis, each rotating one interleaved pair.
        ref_grid (tuple[int, int] | None): the patch grid of pretraining;
            other grids' coordinates are rescaled onto it (EVA-02's scheme);
            None = no rescaling.
        temperature (float): base of the frequencies.
    """

    def __init__(self, head_dims, ref_grid=None, temperature=10000.0):
        super().__init__()
        if head_dims % 4:
            raise ValueError(f'rotary position embeddings need a head width divisible by 4, '
                             f'got {head_dims}')
        self.head_dims = head_dims
        self.ref_grid = None if ref_grid is None else tuple(ref_grid)
        bands = head_dims // 4
        self.register_buffer('frequencies', 1.0 / temperature**(torch.arange(bands) / bands),
                             persistent=False)

    def tables(self, grid, num_prefix_tokens=0):
        """(sin, cos), each (num_prefix_tokens + h * w, d) float32, for the
        tokens of an (h, w) patch grid (row-major) after ``num_prefix_tokens``
        leading tokens that are not rotated (sin 0, cos 1)."""
        device = self.frequencies.device
        axes = [torch.arange(side, device=device, dtype=torch.float32) for side in grid]
        if self.ref_grid is not None:
            axes = [axis / side * ref for axis, side, ref in zip(axes, grid, self.ref_grid)]
        coords = torch.stack(torch.meshgrid(axes, indexing='ij'), -1).flatten(0, 1)  # (N, 2)
        angles = (coords[..., None] * self.frequencies).flatten(1).repeat_interleave(2, -1)
        prefix = angles.new_zeros(num_prefix_tokens, angles.shape[1])
        angles = torch.cat([prefix, angles])
        return angles.sin(), angles.cos()


def rotary_flops(num_tokens, embed_dims):
    """Rotating q and k of ``num_tokens`` tokens, ``embed_dims`` wide over
    all heads: two multiplies per element of each."""
    return 2 * elementwise_flops(num_tokens, 2 * embed_dims)


def rotate(x, sin, cos):
    """``x * cos + rot(x) * sin`` with ``rot`` turning each interleaved pair
    (x0, x1) into (-x1, x0); x (..., N, d), sin / cos broadcast to it."""
    pairs = torch.stack([-x[..., 1::2], x[..., ::2]], -1).reshape(x.shape)
    return (x * cos + pairs * sin).to(x.dtype)
