"""Weighted regularisation triplet (AGW) against its equation, computed by direct loops on hand-made points."""

from __future__ import annotations

import math

import pytest
import torch

from reidstream.training.losses.wrt import weighted_regularization_triplet


def wrt_by_loop(points: list[list[float]], labels: list[int]) -> float:
    """L = mean_i log(1 + exp(sum_j w_ij^p d_ij - sum_k w_ik^n d_ik)), softmax(+d) / softmax(-d) weights."""
    def dist(a, b):
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))

    losses = []
    for i, (a, ya) in enumerate(zip(points, labels)):
        dp = [dist(a, b) for j, (b, yb) in enumerate(zip(points, labels)) if yb == ya and j != i]
        dn = [dist(a, b) for b, yb in zip(points, labels) if yb != ya]
        if not dp or not dn:
            continue
        zp, zn = sum(math.exp(d) for d in dp), sum(math.exp(-d) for d in dn)
        pos = sum(math.exp(d) / zp * d for d in dp)
        neg = sum(math.exp(-d) / zn * d for d in dn)
        losses.append(math.log(1.0 + math.exp(pos - neg)))
    return sum(losses) / len(losses)


def test_matches_the_equation_on_hand_made_points():
    pts = [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 1.0], [2.5, 2.0], [0.5, 0.5]]
    labels = [0, 0, 0, 1, 1, 2]
    got = weighted_regularization_triplet(torch.tensor(pts, dtype=torch.float64), torch.tensor(labels))
    assert got.item() == pytest.approx(wrt_by_loop(pts, labels), rel=1e-9)


def test_one_positive_one_negative_reduces_to_soft_margin():
    # anchors 0 and 1 (class 0), 2 is the only negative: weights are all 1.
    pts = [[0.0], [1.0], [4.0]]
    got = weighted_regularization_triplet(torch.tensor(pts), torch.tensor([0, 0, 1]))
    # anchor 0: d_p = 1, d_n = 4; anchor 1: d_p = 1, d_n = 3; anchor 2 has no positive.
    want = (math.log(1 + math.exp(1 - 4)) + math.log(1 + math.exp(1 - 3))) / 2
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_anchor_is_not_its_own_positive():
    # 1-d points 0, 2 (class 0) and 5, 6 (class 1): every anchor has exactly one positive.
    def term(d_pos, d_negs, self_included=False):
        dps = [0.0, d_pos] if self_included else [d_pos]
        pos = sum(math.exp(d) * d for d in dps) / sum(math.exp(d) for d in dps)
        neg = sum(math.exp(-d) * d for d in d_negs) / sum(math.exp(-d) for d in d_negs)
        return math.log(1 + math.exp(pos - neg))

    got = weighted_regularization_triplet(torch.tensor([[0.0], [2.0], [5.0], [6.0]]), torch.tensor([0, 0, 1, 1]))
    want = (term(2, [5, 6]) + term(2, [3, 4]) + term(1, [5, 3]) + term(1, [6, 4])) / 4
    with_self = (term(2, [5, 6], True) + term(2, [3, 4], True) + term(1, [5, 3], True) + term(1, [6, 4], True)) / 4
    assert got.item() == pytest.approx(want, rel=1e-6)
    assert abs(want - with_self) > 1e-2


def test_far_positives_and_close_negatives_weigh_more():
    pts = [[0.0], [1.0], [3.0], [3.5], [10.0]]
    labels = [0, 0, 0, 1, 1]
    x = torch.tensor(pts, dtype=torch.float64, requires_grad=True)
    loss = weighted_regularization_triplet(x, torch.tensor(labels))
    assert loss.item() == pytest.approx(wrt_by_loop(pts, labels), rel=1e-9)
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_no_valid_anchor_gives_connected_zero():
    x = torch.randn(4, 3, requires_grad=True)
    for labels in (torch.tensor([0, 1, 2, 3]), torch.tensor([5, 5, 5, 5])):
        loss = weighted_regularization_triplet(x, labels)
        assert loss.item() == 0.0
        loss.backward()


def test_duplicate_points_have_finite_gradients():
    x = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.0, 0.0]], requires_grad=True)
    weighted_regularization_triplet(x, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(x.grad).all()


def test_bad_input_raises():
    with pytest.raises(ValueError, match="features"):
        weighted_regularization_triplet(torch.randn(4), torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="labels"):
        weighted_regularization_triplet(torch.randn(4, 2), torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="labels"):
        weighted_regularization_triplet(torch.randn(4, 2), torch.tensor([0.0, 0.0, 1.0, 1.0]))
