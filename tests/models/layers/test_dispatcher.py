"""Token dispatcher details: the gate initialisation, where the DyT paper is
silent and mmdyt follows the reference code, and the hard threshold at ties,
where mmdyt follows the paper (Eq. 4: ``S >= 0.5``; the reference: ``> 0.5``)."""
import torch

from mmdyt.models.layers import TokenDispatcher
from mmdyt.models.layers.dispatcher import straight_through


def test_gate_starts_trunc_normal_002_with_zero_bias():
    torch.manual_seed(0)
    dispatcher = TokenDispatcher(4096)
    weight = dispatcher.gate.weight
    assert not dispatcher.gate.bias.any()
    assert abs(weight.std().item() - 0.02) < 0.002 * 2  # trunc-normal(0.02) at +-2 sigma
    assert weight.abs().max() <= 2.0  # timm / torch truncation bounds


def test_ties_are_active_as_in_the_paper():
    soft = torch.tensor([0.5, 0.5 + 1e-6, 0.5 - 1e-6], requires_grad=True)
    hard = straight_through(soft)
    assert hard.tolist() == [1.0, 1.0, 0.0]
    hard.sum().backward()
    assert soft.grad.tolist() == [1.0, 1.0, 1.0]
    dispatcher = TokenDispatcher(3).eval()
    with torch.no_grad():
        dispatcher.gate.weight.zero_()
        dispatcher.gate.bias.zero_()  # every logit exactly 0: sigmoid 0.5
        mask = dispatcher(torch.randn(2, 5, 3))
    assert mask.dtype == torch.bool
    assert mask.all()
