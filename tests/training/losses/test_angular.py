"""Enumerate angular triplet loss (Gao et al. 2022, Eq. 7-19) against hand values and explicit loops."""

from __future__ import annotations

import math

import pytest
import torch

from reidstream.training.losses.angular import (angular_term, angular_triplet, compactness,
                                                enumerate_angular_triplet, pairwise_cosine)


def cos(u: list[float], v: list[float]) -> float:
    return sum(a * b for a, b in zip(u, v)) / (math.hypot(*u) * math.hypot(*v))


def term(c_an: float, c_ap: float, margin: float, exponential: bool) -> float:
    t = max(0.0, max(0.0, c_an) - max(0.0, c_ap) + margin)
    return math.exp(t) if exponential else t


def reference_eat(rgb, ir, labels, margin=1.0, exponential=True) -> dict[str, float]:
    """Eq. 8-17 by enumeration: every anchor, every cross-modal positive, every negative of the term's modality."""
    rgb, ir = rgb.tolist(), ir.tolist()
    n = len(labels)

    def mean_over(anchors, positives, negatives):
        vals = [term(cos(anchors[a], negatives[k]), cos(anchors[a], positives[p]), margin, exponential)
                for a in range(n) for p in range(n) for k in range(n)
                if labels[p] == labels[a] and labels[k] != labels[a]]
        return sum(vals) / len(vals) if vals else 0.0

    out = {"crgb": mean_over(rgb, ir, ir), "srgb": mean_over(rgb, ir, rgb),
           "cir": mean_over(ir, rgb, rgb), "sir": mean_over(ir, rgb, ir)}
    out["eat"] = sum(out.values())
    return out


def test_pairwise_cosine_and_zero_vectors():
    a = torch.tensor([[1.0, 0.0], [3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    b = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
    want = torch.tensor([[0.0, -1.0], [0.8, -0.6], [0.0, 0.0]])
    got = pairwise_cosine(a, b)
    torch.testing.assert_close(got, want)
    got.sum().backward()
    assert torch.isfinite(a.grad).all() and a.grad[2].abs().sum() == 0
    with pytest.raises(ValueError, match="a, b"):
        pairwise_cosine(torch.zeros(2, 3), torch.zeros(2, 4))


def test_angular_term_clamps_and_hinge():
    # Eq. 7: both cosines clamped at 0 before the difference; margin 1 keeps it >= 0.
    c_an = torch.tensor([0.8, -1.0, 0.8, -0.5, 1.0])
    c_ap = torch.tensor([0.6, 0.6, -0.6, -0.5, 0.0])
    torch.testing.assert_close(angular_term(c_an, c_ap), torch.tensor([1.2, 0.4, 1.8, 1.0, 2.0]))
    # Eq. 6 hinge only bites below margin 1: 0.2 - 0.9 + 0.3 < 0 -> 0; 0.8 - 0.6 + 0.3 = 0.5.
    torch.testing.assert_close(angular_term(torch.tensor([0.2, 0.8]), torch.tensor([0.9, 0.6]), 0.3),
                               torch.tensor([0.0, 0.5]))
    with pytest.raises(ValueError, match="margin"):
        angular_term(c_an, c_ap, -0.1)


def test_angular_triplet_eq7_and_exponential_on_hand_made_vectors():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    p = torch.tensor([[0.6, 0.8], [0.6, 0.8], [-0.6, 0.8]])   # cos 0.6, 0.6, -0.6 (clamped to 0)
    n = torch.tensor([[0.8, 0.6], [-2.0, 0.0], [1.6, 1.2]])   # cos 0.8, -1 (clamped to 0), 0.8
    terms = [0.8 - 0.6 + 1, 0.0 - 0.6 + 1, 0.8 - 0.0 + 1]
    torch.testing.assert_close(angular_triplet(a, p, n), torch.tensor(sum(terms) / 3))
    torch.testing.assert_close(angular_triplet(a, p, n, exponential=True),
                               torch.tensor(sum(math.exp(t) for t in terms) / 3))
    with pytest.raises(ValueError, match="anchor, positive, negative"):
        angular_triplet(a, p[:2], n)


def test_enumerate_matches_the_tuple_formulas_with_one_positive_and_negative():
    # Two identities, one image per modality: each anchor has one positive and one negative per term.
    rgb = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    ir = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
    labels = torch.tensor([3, 7])
    got = enumerate_angular_triplet(rgb, ir, labels, exponential=False)
    swap = torch.tensor([1, 0])
    crgb = angular_triplet(rgb, ir, ir[swap])        # Eq. 8
    srgb = angular_triplet(rgb, ir, rgb[swap])       # Eq. 10
    cir = angular_triplet(ir, rgb, rgb[swap])        # Eq. 9
    sir = angular_triplet(ir, rgb, ir[swap])         # Eq. 11 (positive: V_p^rgb, as in Eq. 16)
    for k, v in {"crgb": crgb, "srgb": srgb, "cir": cir, "sir": sir}.items():
        torch.testing.assert_close(got[k], v)
    # by hand, anchor rgb0=(1,0): pos ir0 cos .8, neg ir1 cos 0 -> 0.2; neg rgb1 cos .6 -> 0.8
    #          anchor rgb1=(.6,.8): pos ir1 cos .8, neg ir0 cos .96 -> 1.16; neg rgb0 cos .6 -> 0.8
    torch.testing.assert_close(got["crgb"], torch.tensor((0.2 + 1.16) / 2))
    torch.testing.assert_close(got["srgb"], torch.tensor(0.8))
    torch.testing.assert_close(got["rgb"], got["crgb"] + got["srgb"])                # Eq. 12
    torch.testing.assert_close(got["eat"], crgb + srgb + cir + sir)                  # Eq. 14


@pytest.mark.parametrize("exponential", [True, False])
@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_enumerate_against_explicit_loop(exponential, margin):
    g = torch.Generator().manual_seed(1)
    rgb, ir = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    labels = [0, 0, 1, 1, 2, 2]
    got = enumerate_angular_triplet(rgb, ir, torch.tensor(labels), margin=margin, exponential=exponential)
    want = reference_eat(rgb, ir, labels, margin, exponential)
    for k in ("crgb", "srgb", "cir", "sir", "eat"):
        assert got[k].item() == pytest.approx(want[k], rel=1e-5), k
    torch.testing.assert_close(got["eat"], got["rgb"] + got["ir"])                   # Eq. 17


def test_enumerate_with_separate_ir_labels():
    g = torch.Generator().manual_seed(2)
    rgb, ir = torch.randn(3, 4, generator=g), torch.randn(4, 4, generator=g)
    got = enumerate_angular_triplet(rgb, ir, torch.tensor([0, 1, 1]), ir_labels=torch.tensor([1, 0, 2, 1]))
    # crgb by hand-written loop over the unequal sets
    lv, li = [0, 1, 1], [1, 0, 2, 1]
    vals = [math.exp(term(cos(rgb[a].tolist(), ir[k].tolist()), cos(rgb[a].tolist(), ir[p].tolist()), 1.0, False))
            for a in range(3) for p in range(4) for k in range(4) if li[p] == lv[a] and li[k] != lv[a]]
    assert got["crgb"].item() == pytest.approx(sum(vals) / len(vals), rel=1e-5)


def test_enumerate_without_negatives_is_zero_and_differentiable():
    rgb = torch.randn(3, 4, requires_grad=True)
    ir = torch.randn(3, 4, requires_grad=True)
    out = enumerate_angular_triplet(rgb, ir, torch.tensor([5, 5, 5]))
    assert out["eat"].item() == 0.0
    out["eat"].backward()
    assert rgb.grad is not None and rgb.grad.abs().sum() == 0


def test_enumerate_gradient_separates_identities():
    g = torch.Generator().manual_seed(3)
    rgb = torch.randn(4, 8, generator=g).requires_grad_()
    ir = torch.randn(4, 8, generator=g).requires_grad_()
    labels = torch.tensor([0, 0, 1, 1])
    opt = torch.optim.SGD([rgb, ir], lr=0.5)
    first = None
    for _ in range(30):
        loss = enumerate_angular_triplet(rgb, ir, labels)["eat"]
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first - 0.5


def test_enumerate_contracts():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="rgb, ir"):
        enumerate_angular_triplet(x, torch.randn(4, 5), torch.arange(4))
    with pytest.raises(ValueError, match="labels"):
        enumerate_angular_triplet(x, x, torch.arange(3))
    with pytest.raises(ValueError, match="labels"):
        enumerate_angular_triplet(x, x, torch.zeros(4))
    with pytest.raises(ValueError, match="ir_labels"):
        enumerate_angular_triplet(x, torch.randn(5, 3), torch.arange(4))
    with pytest.raises(ValueError, match="margin"):
        enumerate_angular_triplet(x, x, torch.arange(4), margin=-1.0)


def test_compactness_eq18_hand_made():
    # one anchor, C=2, 1 x 2 map: local descriptors (1,0) and (0,1), mean (.5,.5): cos = 1/sqrt(2) each
    rgb = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])
    # infrared: descriptors (2,0) and (2,0): cos with the mean = 1
    ir = torch.tensor([[[[2.0, 2.0]], [[0.0, 0.0]]]])
    e = math.exp(1 / math.sqrt(2))
    assert compactness(rgb, ir, reduction="sum").item() == pytest.approx(2 * e + 2 * math.e, rel=1e-6)
    assert compactness(rgb, ir).item() == pytest.approx(e + math.e, rel=1e-6)


def reference_compactness(fmap) -> float:
    """Eq. 18 (sum) for one modality by loops; a zero descriptor has cosine 0."""
    total = 0.0
    b, _, h, w = fmap.shape
    for i in range(b):
        local = [fmap[i, :, y, x].tolist() for y in range(h) for x in range(w)]
        mean = [sum(c) / len(local) for c in zip(*local)]
        total += sum(math.exp(cos(f, mean) if any(f) else 0.0) for f in local)
    return total


def test_compactness_against_loop_and_zero_descriptors():
    g = torch.Generator().manual_seed(4)
    fmap = torch.randn(2, 3, 2, 2, generator=g)
    fmap[0, :, 0, 1] = 0.0  # a zero local descriptor: cos taken as 0, gradient 0
    fmap.requires_grad_()
    ir = torch.randn(3, 3, 1, 2, generator=g)
    got = compactness(fmap, ir, reduction="sum")
    assert got.item() == pytest.approx(reference_compactness(fmap.detach()) + reference_compactness(ir), rel=1e-5)
    mean = compactness(fmap, ir)
    assert mean.item() == pytest.approx(reference_compactness(fmap.detach()) / 8 + reference_compactness(ir) / 6,
                                        rel=1e-5)
    got.backward()
    assert torch.isfinite(fmap.grad).all()
    with pytest.raises(ValueError, match="reduction"):
        compactness(fmap, fmap, reduction="max")
    with pytest.raises(ValueError, match="ir_map"):
        compactness(fmap, torch.randn(2, 3))
