"""GatedAttention: Hafner et al. (2022) Eq. (4)."""

from __future__ import annotations

import pytest
import torch

from reidstream.training.models import GatedAttention


def test_cross_modal_gating_matches_eq4():
    f, g = torch.randn(2, 4, 3, 5), torch.randn(2, 6, 3, 5)
    a = torch.sigmoid(g.mean(dim=1, keepdim=True))
    assert a.shape == (2, 1, 3, 5)
    torch.testing.assert_close(GatedAttention()(f, g), f * a + f)


def test_self_gating_and_max_pool():
    f = torch.randn(2, 4, 3, 5)
    torch.testing.assert_close(GatedAttention()(f), f * torch.sigmoid(f.mean(1, keepdim=True)) + f)
    torch.testing.assert_close(GatedAttention("max")(f), f * torch.sigmoid(f.amax(1, keepdim=True)) + f)


def test_parameter_free_and_gradients_reach_both_inputs():
    att = GatedAttention()
    assert list(att.parameters()) == []
    f = torch.randn(1, 2, 2, 2, requires_grad=True)
    g = torch.randn(1, 2, 2, 2, requires_grad=True)
    att(f, g).sum().backward()
    assert f.grad is not None and g.grad is not None


def test_invalid_inputs():
    with pytest.raises(ValueError, match="pool"):
        GatedAttention("sum")
    with pytest.raises(ValueError, match="gate_source"):
        GatedAttention()(torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 4))
    with pytest.raises(ValueError, match="gate_source"):
        GatedAttention()(torch.randn(2, 4, 3, 5), torch.randn(1, 4, 3, 5))
    with pytest.raises(ValueError, match="features"):
        GatedAttention()(torch.randn(4, 3, 5))
