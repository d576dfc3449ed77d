"""Swin's FLOPs come from the FLOPs home like the ViT's: window attention is
the shared attention's count, so the 'paper' convention (linear layers and
the patch embedding only) drops its matmuls too."""
import torch

from mmdyt.models.backbones import DyTSwinTransformer
from mmdyt.models.flops import flops_convention
from mmdyt.models.record import ForwardRecord

ARCH = dict(embed_dims=8, depths=[2, 2], num_heads=[1, 2])


def dense_flops(convention):
    """A plain tiny Swin (8x8 patches, 4x4 windows) counted from the record
    of a real forward under ``convention``."""
    model = DyTSwinTransformer(arch=ARCH, img_size=32, window_size=4, dispatch=None,
                               adapter_dim=None, out_indices=(1, )).eval()
    record = ForwardRecord()
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32), record=record)
    with flops_convention(convention):
        return model.flops(record).item()


def test_paper_convention_counts_linear_layers_and_the_patch_embedding_only():
    """Stage 0: 64 tokens of C = 8, stage 1: 16 of C = 16; a block's qkv and
    proj cost 4 C^2 per token, its MLP 8 C^2; the merge 4C x 2C per merged
    token; the embedding 3 x 4 x 4 x C per patch."""
    embed = 64 * 48 * 8
    stage0 = 2 * 64 * (4 + 8) * 8 * 8
    merge = 16 * 32 * 16
    stage1 = 2 * 16 * (4 + 8) * 16 * 16
    assert dense_flops('paper') == embed + stage0 + merge + stage1


def test_mmdyt_convention_adds_window_attention_matmuls_and_layer_norms():
    """Each token attends to the 16 tokens of its window: 2 x 16 x C per
    token and block; LayerNorms 5 per element (two per block, the
    embedding's, the merge's and the output norm)."""
    attention = 2 * (2 * 64 * 16 * 8) + 2 * (2 * 16 * 16 * 16)
    norms = 5 * (2 * 2 * 64 * 8 + 2 * 2 * 16 * 16 + 64 * 8 + 16 * 32 + 16 * 16)
    assert dense_flops('mmdyt') == dense_flops('paper') + attention + norms
