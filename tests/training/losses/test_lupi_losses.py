"""LUPI losses against Eq. (5) and Eq. (6) of Alehdaghi et al., with expected values computed by hand / by loops."""

from __future__ import annotations

import math

import pytest
import torch

from reidstream.training.losses.lupi import colour_free_loss, cross_modal_hard_triplet, intermediate_dual_triplet


def hard_triplet_by_loop(a, ya, p, yp, n, yn, margin):
    """mean over anchors of [M + max_{same label in P} d - min_{other label in N} d]_+ (Euclidean d)."""
    def d(u, v):
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(u, v)))

    terms = []
    for fa, la in zip(a, ya):
        dp = [d(fa, fp) for fp, lp in zip(p, yp) if lp == la]
        dn = [d(fa, fn) for fn, ln in zip(n, yn) if ln != la]
        if dp and dn:
            terms.append(max(0.0, margin + max(dp) - min(dn)))
    return sum(terms) / len(terms)


T = lambda rows: torch.tensor(rows, dtype=torch.float64)  # noqa: E731
L = torch.tensor


def test_cross_modal_term_by_hand():
    # anchors (1-d): 0 (id 0), 10 (id 1); positives: 1 and 3 (id 0), 12 (id 1); negatives: 2 (id 0), 9 (id 1)
    got = cross_modal_hard_triplet(T([[0.0], [10.0]]), L([0, 1]), T([[1.0], [3.0], [12.0]]), L([0, 0, 1]),
                                   T([[2.0], [9.0]]), L([0, 1]), margin=0.3)
    # anchor 0: hardest positive 3, hardest negative (id 1) 9 -> [0.3 + 3 - 9]_+ = 0
    # anchor 1: hardest positive 2, hardest negative (id 0) 8 -> [0.3 + 2 - 8]_+ = 0
    assert got.item() == 0.0
    got = cross_modal_hard_triplet(T([[0.0], [10.0]]), L([0, 1]), T([[1.0], [3.0], [12.0]]), L([0, 0, 1]),
                                   T([[1.5], [8.0]]), L([1, 0]), margin=0.3)
    # anchor 0: [0.3 + 3 - 1.5] = 1.8; anchor 1: [0.3 + 2 - 2] = 0.3
    assert got.item() == pytest.approx((1.8 + 0.3) / 2)


def test_anchor_without_positive_or_negative_is_skipped():
    got = cross_modal_hard_triplet(T([[0.0], [5.0]]), L([0, 7]), T([[1.0]]), L([0]), T([[0.5]]), L([3]), margin=1.0)
    # anchor 1 (id 7) has no positive: only anchor 0 counts, [1 + 1 - 0.5] = 1.5
    assert got.item() == pytest.approx(1.5)
    x = torch.zeros(2, 2, requires_grad=True)
    zero = cross_modal_hard_triplet(x, L([0, 1]), x, L([2, 3]), x, L([0, 1]))
    assert zero.item() == 0.0
    zero.backward()


def test_dual_triplet_is_the_sum_of_the_three_role_assignments():
    g = torch.Generator().manual_seed(0)
    f_v, f_t, f_z = (torch.randn(6, 4, generator=g, dtype=torch.float64) for _ in range(3))
    y = L([0, 0, 1, 1, 2, 2])
    out = intermediate_dual_triplet(f_v, f_t, f_z, y, y, margin=0.3)
    v, t, z, yl = f_v.tolist(), f_t.tolist(), f_z.tolist(), y.tolist()
    vtz = hard_triplet_by_loop(v, yl, t, yl, z, yl, 0.3)   # (F^v, F^t, F^z)
    tzv = hard_triplet_by_loop(t, yl, z, yl, v, yl, 0.3)   # (F^t, F^z, F^v)
    zvt = hard_triplet_by_loop(z, yl, v, yl, t, yl, 0.3)   # (F^z, F^v, F^t)
    assert out["vtz"].item() == pytest.approx(vtz, rel=1e-9)
    assert out["tzv"].item() == pytest.approx(tzv, rel=1e-9)
    assert out["zvt"].item() == pytest.approx(zvt, rel=1e-9)
    assert out["loss"].item() == pytest.approx(vtz + tzv + zvt, rel=1e-9)
    # roles matter: swapping positives and negatives of the first term changes it
    assert hard_triplet_by_loop(v, yl, z, yl, t, yl, 0.3) != pytest.approx(vtz)


def test_dual_triplet_roles_on_a_hand_made_case():
    # 1-d, two identities. V: 0 (a), 10 (b); T: 1 (a), 11 (b); Z: 0.5 (a), 10.5 (b) -> no hinge is active
    f_v, f_t, f_z, y = T([[0.0], [10.0]]), T([[1.0], [11.0]]), T([[0.5], [10.5]]), L([0, 1])
    assert intermediate_dual_triplet(f_v, f_t, f_z, y, y, y, margin=0.3)["loss"].item() == 0.0
    # move Z of identity b next to visible a: every term now has its own hand-computed value
    f_z = T([[0.5], [0.2]])
    out = intermediate_dual_triplet(f_v, f_t, f_z, y, y, y, margin=0.3)
    # (V,T,Z): anchor v_a=0: pos t_a=1, neg z_b=0.2 -> 0.3+1-0.2 = 1.1; v_b=10: pos t_b (1), neg z_a (9.5) -> 0
    assert out["vtz"].item() == pytest.approx(1.1 / 2)
    # (T,Z,V): anchor t_a=1: pos z_a (0.5), neg v_b (9) -> 0; anchor t_b=11: pos z_b (10.8), neg v_a (11) -> 0.1
    assert out["tzv"].item() == pytest.approx(0.1 / 2)
    # (Z,V,T): anchor z_a=0.5: pos v_a (0.5), neg t_b (10.5) -> 0; z_b=0.2: pos v_b (9.8), neg t_a (0.8) -> 9.3
    assert out["zvt"].item() == pytest.approx(9.3 / 2)


def kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def test_colour_free_switches_at_half():
    # row 0: mean |f_v - f_z| = (1 + 0.25) / 2 = 0.625 > 0.5 -> L1 branch
    # row 1: mean |f_v - f_z| = (0.5 + 0.5) / 2 = 0.5, not > 0.5 -> alpha_c * KL branch
    f_v = T([[1.0, 0.25], [0.5, -0.5]])
    f_z = T([[0.0, 0.0], [0.0, 0.0]])
    logits_v = T([[0.0, 0.0], [0.0, math.log(3.0)]])   # row 1: p = (0.25, 0.75)
    logits_z = T([[5.0, -5.0], [0.0, 0.0]])            # row 1: q = (0.5, 0.5)
    got = colour_free_loss(f_v, f_z, logits_v, logits_z, alpha_c=0.5)
    want = (0.625 + 0.5 * kl([0.25, 0.75], [0.5, 0.5])) / 2
    assert got.item() == pytest.approx(want, rel=1e-9)
    # just above the threshold the L1 branch takes over
    got = colour_free_loss(T([[0.5, -0.5000002]]), T([[0.0, 0.0]]), logits_v[1:], logits_z[1:])
    assert got.item() == pytest.approx(0.5000001, rel=1e-9)


def test_colour_free_sum_reduction_and_kl_direction():
    f_v, f_z = T([[0.2, 0.1]]), T([[0.0, 0.0]])
    lv, lz = T([[1.0, 0.0, -1.0]]), T([[0.0, 2.0, 0.0]])
    p = [math.exp(v) / sum(math.exp(u) for u in (1.0, 0.0, -1.0)) for v in (1.0, 0.0, -1.0)]
    q = [math.exp(v) / sum(math.exp(u) for u in (0.0, 2.0, 0.0)) for v in (0.0, 2.0, 0.0)]
    # L1 norm (sum) 0.3 < 0.5 -> KL(p || q), p from the visible image
    got = colour_free_loss(f_v, f_z, lv, lz, alpha_c=0.5, l1_reduction="sum")
    assert got.item() == pytest.approx(0.5 * kl(p, q), rel=1e-9)
    assert kl(p, q) != pytest.approx(kl(q, p), rel=1e-3)
    # sum reduction reaches the L1 branch earlier than the mean
    f_v = T([[0.4, 0.4]])
    assert colour_free_loss(f_v, f_z, lv, lz, l1_reduction="sum").item() == pytest.approx(0.8)
    assert colour_free_loss(f_v, f_z, lv, lz, l1_reduction="mean").item() == pytest.approx(0.5 * kl(p, q))


def test_colour_free_is_zero_for_identical_streams_and_differentiable():
    f = torch.randn(3, 4, requires_grad=True)
    logits = torch.randn(3, 5)
    assert colour_free_loss(f, f, logits, logits).item() == pytest.approx(0.0, abs=1e-7)
    f_z = torch.randn(3, 4, requires_grad=True)
    colour_free_loss(f, f_z, logits, torch.randn(3, 5)).backward()
    assert torch.isfinite(f.grad).all() and torch.isfinite(f_z.grad).all()


def test_bad_input_raises():
    with pytest.raises(ValueError, match="margin"):
        cross_modal_hard_triplet(T([[0.0]]), L([0]), T([[0.0]]), L([0]), T([[0.0]]), L([1]), margin=-1)
    with pytest.raises(ValueError, match="feature size"):
        intermediate_dual_triplet(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 3), L([0, 1]), L([0, 1]))
    with pytest.raises(ValueError, match="labels of positives"):
        cross_modal_hard_triplet(torch.zeros(2, 3), L([0, 1]), torch.zeros(2, 3), L([0]), torch.zeros(2, 3), L([0, 1]))
    with pytest.raises(ValueError, match="f_v, f_z"):
        colour_free_loss(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 5), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="logits_v, logits_z"):
        colour_free_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 5), torch.zeros(2, 6))
    with pytest.raises(ValueError, match="l1_reduction"):
        colour_free_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 5), torch.zeros(2, 5), l1_reduction="l2")
    with pytest.raises(ValueError, match="alpha_c"):
        colour_free_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 5), torch.zeros(2, 5), alpha_c=-0.5)
