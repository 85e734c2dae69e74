"""Batch-hard triplet loss (Hafner et al. Eq. 5, Hermans et al. 2017) against explicit loops."""

from __future__ import annotations

import math

import pytest
import torch

from reidstream.training.losses import batch_hard_triplet, batch_hard_triplet_stats, pairwise_euclidean


def reference(emb: torch.Tensor, labels: list[int], margin: float) -> float:
    terms = []
    for a in range(len(labels)):
        pos = [math.dist(emb[a].tolist(), emb[p].tolist()) for p in range(len(labels))
               if p != a and labels[p] == labels[a]]
        neg = [math.dist(emb[a].tolist(), emb[n].tolist()) for n in range(len(labels)) if labels[n] != labels[a]]
        if pos and neg:
            terms.append(max(0.0, max(pos) - min(neg) + margin))
    return sum(terms) / len(terms) if terms else 0.0


def test_pairwise_euclidean():
    a = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    b = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 4.0]])
    expected = torch.tensor([[0.0, 1.0, 5.0], [5.0, math.sqrt(20.0), 0.0]])
    torch.testing.assert_close(pairwise_euclidean(a, b), expected, atol=1e-5, rtol=0)
    x = torch.randn(3, 4, requires_grad=True)
    pairwise_euclidean(x, x).sum().backward()  # zero diagonal: clamped sqrt, no NaN
    assert torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="a, b"):
        pairwise_euclidean(torch.zeros(2, 3), torch.zeros(2, 4))


def test_hand_made_1d_case():
    # 1-D embeddings, two identities: distances are |x_i - x_j|
    emb = torch.tensor([[0.0], [1.0], [3.0], [4.5]])
    labels = torch.tensor([0, 0, 1, 1])
    # anchor 0: d_ap=1, d_an=3 -> 1-3+.5 <0 -> 0 ; anchor 1: d_ap=1, d_an=2 -> 0 ;
    # anchor 2: d_ap=1.5, d_an=2 -> 0 ; anchor 3: d_ap=1.5, d_an=3.5 -> 0  => inactive hinge everywhere
    assert batch_hard_triplet(emb, labels, margin=0.5).item() == pytest.approx(0.0, abs=1e-6)
    # margin 1.0: anchors 1 and 2 are active: (1-2+1) + (1.5-2+1) = 0 + 0.5 -> mean over 4 anchors
    assert batch_hard_triplet(emb, labels, margin=1.0).item() == pytest.approx(0.5 / 4, abs=1e-6)
    # margin 2.0: 0.0 + 1.0 + 1.5 + 0.0 -> 2.5 / 4 ... anchor 0: 1-3+2=0, anchor 3: 1.5-3.5+2=0
    assert batch_hard_triplet(emb, labels, margin=2.0).item() == pytest.approx(2.5 / 4, abs=1e-6)


def test_matches_reference_loops_and_anchor_without_positive():
    torch.manual_seed(0)
    emb = torch.randn(9, 5)
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 3]  # label 3 has no positive: anchor 8 is skipped
    for margin in (0.0, 0.5, 3.0):
        got = batch_hard_triplet(emb, torch.tensor(labels), margin=margin).item()
        assert got == pytest.approx(reference(emb, labels, margin), abs=1e-5)
    stats = batch_hard_triplet_stats(emb, torch.tensor(labels), margin=0.5)
    assert stats["valid_anchors"] == 8 and 0.0 <= stats["active_fraction"] <= 1.0


def test_no_valid_anchor_gives_zero_with_grad():
    emb = torch.randn(3, 4, requires_grad=True)
    loss = batch_hard_triplet(emb, torch.tensor([0, 1, 2]))  # no positives
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(emb.grad, torch.zeros(3, 4))
    assert batch_hard_triplet(emb, torch.tensor([1, 1, 1])).item() == 0.0  # no negatives
    assert batch_hard_triplet_stats(emb, torch.tensor([0, 1, 2]))["valid_anchors"] == 0


def test_gradient_pulls_positive_and_pushes_negative():
    emb = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0]], requires_grad=True)
    batch_hard_triplet(emb, torch.tensor([0, 0, 1]), margin=0.5).backward()
    assert torch.isfinite(emb.grad).all() and emb.grad.abs().sum() > 0


def test_invalid_arguments():
    with pytest.raises(ValueError, match="labels"):
        batch_hard_triplet(torch.randn(4, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="embeddings"):
        batch_hard_triplet(torch.randn(4), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="margin"):
        batch_hard_triplet(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), margin=-1.0)
