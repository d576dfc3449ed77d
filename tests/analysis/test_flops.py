"""FLOPs of what ran: the backbone count, the rest of the model, the
per-layer breakdown, against counts written out by hand."""
import pytest
import torch
import torch.nn as nn

from mmdyt.analysis import count_parameters, force_activation_rate, measure_flops
import tiny_dyt

ARCH = tiny_dyt.tiny_arch(num_layers=2)
C, LAYERS, HIDDEN = ARCH['embed_dims'], ARCH['num_layers'], ARCH['feedforward_channels']
PATCH, SIZE, N = tiny_dyt.PATCH_SIZE, tiny_dyt.IMG_SIZE, tiny_dyt.NUM_TOKENS


def tiny(**kwargs):
    return tiny_dyt.tiny_vit(LAYERS, **kwargs)


def dense_block(n, mlp_tokens=None):
    """Multiply-adds of one block: qkv + proj, q k^T and attn v, MLP, two LNs."""
    mlp_tokens = n if mlp_tokens is None else mlp_tokens
    return (4 * n * C * C + 2 * n * n * C + 2 * mlp_tokens * C * HIDDEN +
            5 * C * (n + mlp_tokens))


def embed_and_norm():
    return (N - 1) * C * 3 * PATCH**2 + 5 * C * N


class TinyClassifier(nn.Module):
    """Backbone, a neck and a head, like an ImageClassifier's tensor mode."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.neck = nn.Linear(C, 20)
        self.head = nn.Linear(20, 10)

    def forward(self, inputs):
        return self.head(self.neck(self.backbone(inputs)[0]))


def test_dense_model_matches_hand_count():
    model = TinyClassifier(tiny(dispatch=None, adapter_dim=None))
    result = measure_flops(model, torch.randn(3, 3, SIZE, SIZE))
    backbone = embed_and_norm() + LAYERS * dense_block(N)
    assert result['backbone'] == backbone
    assert result['rest'] == C * 20 + 20 * 10
    assert result['total'] == backbone + C * 20 + 20 * 10
    assert result['breakdown']['backbone.block1'] == dense_block(N)
    assert result['breakdown']['neck'] == C * 20
    assert result['breakdown']['head'] == 200
    assert sum(result['breakdown'].values()) == result['total']


def test_dyt_counts_only_active_tokens():
    torch.manual_seed(0)
    model = tiny(dispatch='mlp', adapter_dim=8).eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    rates = force_activation_rate(model, 0.5, x)
    assert torch.allclose(rates, torch.full_like(rates, 0.5))
    result = measure_flops(model, x)
    active = 1 + (N - 1) // 2  # class token + half the patches, per sample on average
    adapter_and_gate = 2 * N * C * 8 + N * C
    expected = embed_and_norm() + LAYERS * (dense_block(N, active) + adapter_and_gate)
    assert result['total'] == pytest.approx(expected)
    assert result['total'] < embed_and_norm() + LAYERS * dense_block(N)
    assert result['rest'] == 0


def test_parameter_counts():
    model = tiny(dispatch='mlp', adapter_dim=8)
    trainable, total = count_parameters(model)
    per_block = 2 * C * 8 + 8 + C + C + 1  # adapter down/up with biases, gate
    assert trainable == LAYERS * per_block
    assert total == sum(p.numel() for p in model.parameters())


def test_needs_a_dyt_backbone():
    with pytest.raises(ValueError, match='no DyTVisionTransformer'):
        measure_flops(nn.Linear(2, 2), torch.randn(1, 2))
