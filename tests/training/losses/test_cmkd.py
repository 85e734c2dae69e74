"""CMKD loss (Gao et al. 2022, Eq. 5) against hand values and explicit loops; anchor/positive pairing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reidstream.training.losses.cmkd import cmkd_loss, partner_index


def test_eq5_hand_made_vectors():
    rgb_a = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    ir_a = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    rgb_p = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    ir_p = torch.tensor([[3.0, 2.0], [0.0, 3.0]])
    # pair 0: ||(1,2)-(3,2)||^2 = 4, ||(0,0)-(1,1)||^2 = 2 -> 6 ; pair 1: 9 + (1 + 1) = 11
    assert cmkd_loss(rgb_a, ir_a, rgb_p, ir_p, reduction="sum").item() == pytest.approx((6 + 11) / 2)
    assert cmkd_loss(rgb_a, ir_a, rgb_p, ir_p).item() == pytest.approx((6 + 11) / 2 / 2)


def test_eq5_on_feature_maps_against_loop_and_mse():
    g = torch.Generator().manual_seed(0)
    maps = [torch.randn(3, 2, 4, 2, generator=g) for _ in range(4)]
    rgb_a, ir_a, rgb_p, ir_p = maps
    want = 0.0
    for i in range(3):
        want += sum((x - y) ** 2 for x, y in zip(rgb_a[i].flatten().tolist(), ir_p[i].flatten().tolist()))
        want += sum((x - y) ** 2 for x, y in zip(ir_a[i].flatten().tolist(), rgb_p[i].flatten().tolist()))
    got = cmkd_loss(*maps, reduction="sum")
    assert got.item() == pytest.approx(want / 3, rel=1e-5)
    # "mean": per element, i.e. the authors' two nn.MSELoss terms
    mse = nn.MSELoss()
    torch.testing.assert_close(cmkd_loss(*maps), mse(rgb_a, ir_p) + mse(ir_a, rgb_p))


def test_identical_features_give_zero_and_gradient_pulls_together():
    x = torch.randn(2, 3, requires_grad=True)
    assert cmkd_loss(x, x, x, x).item() == 0.0
    a = torch.zeros(1, 2, requires_grad=True)
    b = torch.ones(1, 2)
    cmkd_loss(a, a, b, b, reduction="sum").backward()
    # d/da (||a - b||^2 + ||a - b||^2) = 4 (a - b)
    torch.testing.assert_close(a.grad, torch.full((1, 2), -4.0))


def test_cmkd_contracts():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="rgb_anchor, ir_anchor"):
        cmkd_loss(x, x, x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="rgb_anchor, ir_anchor"):
        cmkd_loss(torch.zeros(3), torch.zeros(3), torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="rgb_anchor, ir_anchor"):
        e = torch.zeros(0, 3)
        cmkd_loss(e, e, e, e)
    with pytest.raises(ValueError, match="reduction"):
        cmkd_loss(x, x, x, x, reduction="max")


def test_partner_index_pairs_within_identity():
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    assert partner_index(labels).tolist() == [1, 0, 3, 4, 2, 5]
    # identity-major P x K batch and an interleaved one
    pk = torch.tensor([4, 4, 9, 9])
    assert partner_index(pk).tolist() == [1, 0, 3, 2]
    mixed = torch.tensor([2, 5, 2, 5])
    p = partner_index(mixed)
    assert p.tolist() == [2, 3, 0, 1] and torch.equal(mixed[p], mixed)
    with pytest.raises(ValueError, match="labels"):
        partner_index(torch.zeros(3))
    with pytest.raises(ValueError, match="labels"):
        partner_index(torch.zeros(2, 2, dtype=torch.long))
