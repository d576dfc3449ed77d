"""Position-embedding resizing for inputs of another size."""
import torch
import torch.nn.functional as F


def resize_pos_embed(pos_embed, src_shape, dst_shape, num_extra_tokens=1):
    """Bicubic resize of the patch part of a position embedding.

    Args:
        pos_embed (Tensor): (1, num_extra_tokens + Hs * Ws, C).
        src_shape, dst_shape (tuple[int, int]): patch grids (H, W).

    Returns:
        Tensor: (1, num_extra_tokens + Hd * Wd, C).
    """
    if tuple(src_shape) == tuple(dst_shape):
        return pos_embed
    extra, grid = pos_embed[:, :num_extra_tokens], pos_embed[:, num_extra_tokens:]
    grid = grid.reshape(1, *src_shape, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=dst_shape, mode='bicubic', align_corners=False)
    return torch.cat([extra, grid.flatten(2).transpose(1, 2)], dim=1)
