"""Dual-alignment losses (Hao et al. 2019, Eq. 1/13, 6-8/14, 9-12) against hand values and explicit loops."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from reidstream.training.losses.dual_align import (correlation_loss, distribution_loss, part_identity_loss,
                                                   part_statistics, pearson_matrix)

TINY = 1e-12  # eps small enough not to move hand-computed values


# ----------------------------------------------------------------- reference loops (plain Python)

def ref_stats(image: list[list[float]]) -> tuple[list[float], list[float]]:
    """Eq. 7-8 for one image given as K parts x D channels."""
    k, d = len(image), len(image[0])
    mu = [sum(image[i][c] for i in range(k)) / k for c in range(d)]
    sigma = [math.sqrt(sum((image[i][c] - mu[c]) ** 2 for i in range(k)) / k) for c in range(d)]
    return mu, sigma


def ref_distribution(pv: torch.Tensor, pi: torch.Tensor) -> float:
    """Eq. 14: 1/(2N) sum over pairs of squared mean and std differences."""
    total = 0.0
    for j in range(pv.shape[0]):
        mv, sv = ref_stats(pv[j].tolist())
        mi, si = ref_stats(pi[j].tolist())
        total += sum((a - b) ** 2 for a, b in zip(mv, mi)) + sum((a - b) ** 2 for a, b in zip(sv, si))
    return total / (2 * pv.shape[0])


def ref_correlation(fv: torch.Tensor, fi: torch.Tensor) -> float:
    """Eq. 9-12 with statistics.correlation (Pearson) and a loop over columns."""
    n = fv.shape[0]
    cv = [[statistics.correlation(fv[a].tolist(), fv[b].tolist()) for b in range(n)] for a in range(n)]
    ci = [[statistics.correlation(fi[a].tolist(), fi[b].tolist()) for b in range(n)] for a in range(n)]
    return sum(sum((cv[a][j] - ci[a][j]) ** 2 for a in range(n)) for j in range(n)) / n


# ----------------------------------------------------------------- identity loss, Eq. 1 / 13

def test_part_identity_loss_hand_value():
    # one image, K=2 parts, C=2 classes, label 0:
    # part 1 logits (0, 0)     -> p = 1/2 -> -log(1/2)
    # part 2 logits (ln 3, 0)  -> p = 3/4 -> -log(3/4)       sum = ln 2 + ln 4/3 = ln 8/3
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])
    got = part_identity_loss(logits, torch.tensor([0]))
    assert got.item() == pytest.approx(math.log(8.0 / 3.0), abs=1e-6)


def test_part_identity_loss_is_batch_mean_of_part_sum():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 5)
    labels = [1, 4, 0]
    expected = 0.0
    for j in range(3):
        for i in range(4):
            row = logits[j, i].tolist()
            expected -= row[labels[j]] - math.log(sum(math.exp(v) for v in row))
    expected /= 3
    assert part_identity_loss(logits, torch.tensor(labels)).item() == pytest.approx(expected, abs=1e-5)


def test_part_identity_loss_contract():
    with pytest.raises(ValueError, match="part_logits"):
        part_identity_loss(torch.zeros(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        part_identity_loss(torch.zeros(2, 3, 5), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="labels"):
        part_identity_loss(torch.zeros(2, 3, 5), torch.tensor([0.0, 1.0]))


# ----------------------------------------------------------------- distribution loss, Eq. 6-8 / 14

def test_part_statistics_hand_values():
    # K=2 parts of D=2 channels: channel 0 = (1, 3), channel 1 = (2, 6)
    parts = torch.tensor([[[1.0, 2.0], [3.0, 6.0]]])
    mu, sigma = part_statistics(parts, eps=TINY)
    torch.testing.assert_close(mu, torch.tensor([[2.0, 4.0]]))
    torch.testing.assert_close(sigma, torch.tensor([[1.0, 2.0]]))  # population std (divisor K)


def test_distribution_loss_hand_value_with_zero_variance_part():
    # visible parts (0, 2): mu 1, sigma 1; infrared parts (1, 1): mu 1, sigma 0 (zero variance)
    # Eq. 6: 1/2 * ((1-1)^2 + (1-0)^2) = 0.5
    pv = torch.tensor([[[0.0], [2.0]]])
    pi = torch.tensor([[[1.0], [1.0]]], requires_grad=True)
    loss = distribution_loss(pv, pi, eps=TINY)
    assert loss.item() == pytest.approx(0.5, abs=1e-5)
    loss.backward()
    assert torch.isfinite(pi.grad).all()


def test_distribution_loss_two_pairs_hand_value():
    # pair 1: V (0, 2) -> mu 1, sigma 1 ; I (2, 6) -> mu 4, sigma 2 : 9 + 1 = 10
    # pair 2: V (1, 1) -> mu 1, sigma 0 ; I (1, 1) -> mu 1, sigma 0 : 0
    # Eq. 14: (10 + 0) / (2 * 2) = 2.5
    pv = torch.tensor([[[0.0], [2.0]], [[1.0], [1.0]]])
    pi = torch.tensor([[[2.0], [6.0]], [[1.0], [1.0]]])
    assert distribution_loss(pv, pi, eps=TINY).item() == pytest.approx(2.5, abs=1e-5)


def test_distribution_loss_matches_loops_and_ignores_part_order():
    torch.manual_seed(1)
    pv, pi = torch.randn(4, 6, 5), torch.randn(4, 6, 5)
    got = distribution_loss(pv, pi, eps=TINY).item()
    assert got == pytest.approx(ref_distribution(pv, pi), rel=1e-5)
    # statistics over the K parts of each image: a permutation of the parts changes nothing
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    assert distribution_loss(pv[:, perm], pi, eps=TINY).item() == pytest.approx(got, rel=1e-5)
    # ... but pairing matters: swapping the order of the infrared images changes the loss
    assert distribution_loss(pv, pi.flip(0), eps=TINY).item() != pytest.approx(got, rel=1e-3)
    assert distribution_loss(pv, pv.clone()).item() == pytest.approx(0.0, abs=1e-10)


def test_distribution_loss_all_parts_equal_gives_finite_gradients():
    # every image has K identical parts: sigma = sqrt(eps) in both modalities
    base_v = torch.randn(3, 1, 4).expand(3, 6, 4).clone().requires_grad_(True)
    base_i = torch.randn(3, 1, 4).expand(3, 6, 4).clone().requires_grad_(True)
    loss = distribution_loss(base_v, base_i)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(base_v.grad).all() and torch.isfinite(base_i.grad).all()
    _, sigma = part_statistics(base_v.detach(), eps=1e-8)
    torch.testing.assert_close(sigma, torch.full((3, 4), 1e-4))


def test_distribution_loss_contract():
    with pytest.raises(ValueError, match="parts_v, parts_i"):
        distribution_loss(torch.zeros(2, 6, 4), torch.zeros(2, 6, 5))
    with pytest.raises(ValueError, match="parts_v, parts_i"):
        distribution_loss(torch.zeros(2, 24), torch.zeros(2, 24))
    with pytest.raises(ValueError, match="parts_v"):
        distribution_loss(torch.zeros(0, 6, 4), torch.zeros(0, 6, 4))
    with pytest.raises(ValueError, match="eps"):
        distribution_loss(torch.zeros(2, 6, 4), torch.zeros(2, 6, 4), eps=0.0)
    with pytest.raises(ValueError, match="parts"):
        part_statistics(torch.zeros(2, 4))


# ----------------------------------------------------------------- correlation loss, Eq. 9-12

def test_pearson_matrix_hand_values_and_constant_vector():
    feats = torch.tensor([[1.0, 2.0, 3.0],    # x
                          [2.0, 4.0, 6.0],    # 2x        -> +1 with x
                          [3.0, 2.0, 1.0],    # reversed  -> -1 with x
                          [1.0, 0.0, 1.0],    # centred (1/3, -2/3, 1/3) . (-1, 0, 1) = 0 -> 0 with x
                          [5.0, 5.0, 5.0]])   # zero variance -> 0 with everything, 1 with itself
    c = pearson_matrix(feats, eps=TINY)
    assert torch.isfinite(c).all()
    torch.testing.assert_close(c, c.t())
    torch.testing.assert_close(torch.diagonal(c), torch.ones(5))
    assert c[0, 1].item() == pytest.approx(1.0, abs=1e-6)
    assert c[0, 2].item() == pytest.approx(-1.0, abs=1e-6)
    assert c[0, 3].item() == pytest.approx(0.0, abs=1e-6)
    assert c[4, :4].abs().max().item() == pytest.approx(0.0, abs=1e-6)


def test_correlation_loss_hand_value():
    # C_V = [[1, 1], [1, 1]] ; C_I = [[1, -1], [-1, 1]]  -> columns differ by (0, 2) and (2, 0)
    # Eq. 12: (4 + 4) / 2 = 4
    fv = torch.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]])
    fi = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    assert correlation_loss(fv, fi, eps=TINY).item() == pytest.approx(4.0, abs=1e-5)
    assert correlation_loss(fv[:1], fi[:1]).item() == 0.0  # N = 1: C = [1] in both modalities


def test_correlation_loss_matches_loops_and_is_affine_invariant_per_sample():
    torch.manual_seed(2)
    fv, fi = torch.randn(5, 12), torch.randn(5, 12)
    got = correlation_loss(fv, fi, eps=TINY).item()
    assert got == pytest.approx(ref_correlation(fv, fi), rel=1e-5)
    # Pearson ignores a positive scale and an offset of each vector
    scale, shift = torch.rand(5, 1) + 0.5, torch.randn(5, 1)
    assert correlation_loss(fv * scale + shift, fi, eps=TINY).item() == pytest.approx(got, rel=1e-4)
    assert correlation_loss(fv, fv.clone()).item() == pytest.approx(0.0, abs=1e-10)


def test_correlation_loss_zero_variance_feature_is_finite():
    fv = torch.randn(4, 8)
    fv[1] = 3.0  # constant descriptor
    fv.requires_grad_(True)
    fi = torch.randn(4, 8, requires_grad=True)
    loss = correlation_loss(fv, fi)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(fv.grad).all() and torch.isfinite(fi.grad).all()
    # the constant row has correlation 0 with the others: its column differs from C_I's by -c_I
    ci = [[statistics.correlation(fi[a].tolist(), fi[b].tolist()) for b in range(4)] for a in range(4)]
    cv = pearson_matrix(fv.detach())
    for a in range(4):
        if a != 1:
            assert cv[a, 1].item() == pytest.approx(0.0, abs=1e-6)
    assert pearson_matrix(fi.detach())[0, 1].item() == pytest.approx(ci[0][1], abs=1e-5)


def test_correlation_loss_contract():
    with pytest.raises(ValueError, match="features_v, features_i"):
        correlation_loss(torch.zeros(3, 8), torch.zeros(4, 8))
    with pytest.raises(ValueError, match="features_v, features_i"):
        correlation_loss(torch.zeros(3, 2, 4), torch.zeros(3, 2, 4))
    with pytest.raises(ValueError, match="features_v"):
        correlation_loss(torch.zeros(0, 8), torch.zeros(0, 8))
    with pytest.raises(ValueError, match="features"):
        pearson_matrix(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="eps"):
        pearson_matrix(torch.zeros(3, 4), eps=-1.0)
