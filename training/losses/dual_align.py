"""Dual-alignment losses of Hao et al., "Dual-alignment Feature Embedding for
Cross-modality Person Re-identification" (ACM MM 2019).

* :func:`part_identity_loss`: the PCB identity loss summed over the K part
  classifiers, Eq. (1) / Eq. (13).
* :func:`part_statistics` and :func:`distribution_loss`: the intra-class
  distribution loss, Eq. (6)-(8) for one visible/infrared pair and Eq. (14)
  for a mini-batch of N pairs.
* :func:`pearson_matrix` and :func:`correlation_loss`: the inter-class
  correlation loss, Eq. (9)-(12).

All functions are pure (no state); zero-variance inputs give finite values and
gradients (see the ``eps`` arguments).
"""

from __future__ import annotations

from numbers import Real

import torch
from torch import Tensor
from torch.nn import functional as F


def _check_eps(eps: float) -> float:
    if not isinstance(eps, Real) or isinstance(eps, bool) or not eps > 0:
        raise ValueError(f"eps: expected a number > 0, got {eps!r}")
    return float(eps)


def part_identity_loss(part_logits: Tensor, labels: Tensor) -> Tensor:
    """Identity loss of one modality over K part classifiers, Hao et al. (2019) Eq. (1) / Eq. (13).

    ``L = -1/N * sum_j sum_i y_j log p_(j,i)``: the softmax cross-entropy of
    every part classifier ``i = 1..K``, averaged over the ``N`` images
    ``j`` of the batch and *summed* over the parts ("minimizing the sum of
    identity losses over K parts", Sec. 3.2). Eq. (13) is this term for the
    visible batch plus the same term for the infrared batch.

    Args:
        part_logits: ``N x K x C`` class scores of the K part classifiers.
        labels: ``N`` integer labels in ``[0, C)``.

    Returns:
        Scalar loss.
    """
    if part_logits.ndim != 3:
        raise ValueError(f"part_logits: expected an N x K x C tensor, got shape {tuple(part_logits.shape)}")
    n, k, c = part_logits.shape
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"labels: expected a vector of {n} labels, got shape {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex:
        raise ValueError(f"labels: expected integer class indices, got dtype {labels.dtype}")
    targets = labels.long().to(part_logits.device).unsqueeze(1).expand(n, k)
    # mean over the N*K (image, part) terms, times K = sum over parts of the per-part batch means
    return F.cross_entropy(part_logits.reshape(n * k, c), targets.reshape(n * k)) * k


def part_statistics(parts: Tensor, eps: float = 1e-8) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation of each image's K part features, Hao et al. (2019) Eq. (7)-(8).

    Every part feature ``f_i`` (``i = 1..K``) of one image is a sample of that
    image's diagonal Gaussian (Sec. 3.3), so per image and per channel

    ``mu = 1/K sum_i f_i``,  ``sigma = sqrt(1/K sum_i (f_i - mu) * (f_i - mu))``

    (population standard deviation, divisor K, as printed). The square root is
    taken of ``variance + eps``: parts that are all equal in a channel give
    ``sigma = sqrt(eps)`` and a finite gradient instead of NaN.

    Args:
        parts: ``N x K x D`` part features (``f_(j,i)``: image j, part i).
        eps: Added to the variance before the square root (> 0).

    Returns:
        ``(mu, sigma)``, both ``N x D``.
    """
    eps = _check_eps(eps)
    if parts.ndim != 3 or parts.shape[1] < 1:
        raise ValueError(f"parts: expected an N x K x D tensor with K >= 1, got shape {tuple(parts.shape)}")
    mu = parts.mean(dim=1)
    var = (parts - mu.unsqueeze(1)).pow(2).mean(dim=1)
    return mu, (var + eps).sqrt()


def distribution_loss(parts_v: Tensor, parts_i: Tensor, eps: float = 1e-8) -> Tensor:
    """Intra-class distribution loss, Hao et al. (2019) Eq. (14) (Eq. (6) for N = 1).

    ``L_d = 1/(2N) sum_j ( ||mu_j^V - mu_j^I||_2^2 + ||sigma_j^V - sigma_j^I||_2^2 )``

    with ``mu_j``, ``sigma_j`` the per-channel mean and standard deviation of
    the K part features of the j-th image (Eq. 7-8, :func:`part_statistics`),
    and visible image j paired with infrared image j of the same identity
    (Sec. 3.3, "N pairs of visible and infrared paired images"). It is the
    diagonal-covariance surrogate of the Jeffreys divergence of Eq. (5).
    Eq. (14) prints its sum as ``sum_(i=1)^k``; the ``1/(2N)`` factor and the
    text ("extend formula 6 from a pair to a mini-batch") show that it runs
    over the N pairs, which is what is implemented.

    Args:
        parts_v: ``N x K x D`` visible part features.
        parts_i: ``N x K x D`` infrared part features; row j pairs with ``parts_v[j]``.
        eps: Variance regulariser of :func:`part_statistics`.

    Returns:
        Scalar loss.
    """
    if parts_v.ndim != 3 or parts_i.shape != parts_v.shape:
        raise ValueError(f"parts_v, parts_i: expected two N x K x D tensors of the same shape, got "
                         f"{tuple(parts_v.shape)} and {tuple(parts_i.shape)}")
    if parts_v.shape[0] < 1:
        raise ValueError("parts_v: expected at least one pair (N >= 1), got an empty batch")
    mu_v, sigma_v = part_statistics(parts_v, eps)
    mu_i, sigma_i = part_statistics(parts_i, eps)
    per_pair = (mu_v - mu_i).pow(2).sum(1) + (sigma_v - sigma_i).pow(2).sum(1)
    return per_pair.sum() / (2.0 * parts_v.shape[0])


def pearson_matrix(features: Tensor, eps: float = 1e-8) -> Tensor:
    """Pearson correlation matrix of a batch of feature vectors, Hao et al. (2019) Eq. (9)-(10).

    ``C[a, b] = sum_d (x_d - x̄)(y_d - ȳ) / ( sqrt(sum_d (x_d - x̄)^2) sqrt(sum_d (y_d - ȳ)^2) )``

    for ``x = features[a]``, ``y = features[b]``, the means taken over the D
    entries of each vector (Eq. 9). Numerator and denominator are both divided
    by D and ``eps`` is added to each vector's variance, so a constant
    (zero-variance) vector has correlation 0 with every other vector instead
    of NaN. The diagonal is 1 by definition of Eq. (10) (``c_jj = 1``), also
    for constant vectors.

    Args:
        features: ``N x D`` feature vectors (D >= 2).
        eps: Added to each vector's variance (> 0).

    Returns:
        ``N x N`` symmetric matrix with unit diagonal.
    """
    eps = _check_eps(eps)
    if features.ndim != 2 or features.shape[1] < 2:
        raise ValueError(f"features: expected an N x D matrix with D >= 2, got shape {tuple(features.shape)}")
    centred = features - features.mean(dim=1, keepdim=True)
    d = features.shape[1]
    cov = centred @ centred.t() / d
    scale = (centred.pow(2).mean(dim=1) + eps).sqrt()
    corr = cov / (scale.unsqueeze(1) * scale.unsqueeze(0))
    eye = torch.eye(features.shape[0], dtype=torch.bool, device=features.device)
    return torch.where(eye, torch.ones_like(corr), corr)


def correlation_loss(features_v: Tensor, features_i: Tensor, eps: float = 1e-8) -> Tensor:
    """Inter-class correlation loss, Hao et al. (2019) Eq. (12).

    ``L_c = 1/N sum_j ||c_Vj - c_Ij||_2^2``

    where ``c_Vj`` is the j-th column of the Pearson matrix ``C_V`` of the
    visible batch (Eq. 10-11, :func:`pearson_matrix`) and ``c_Ij`` that of the
    infrared batch; the visible and infrared batches hold the same identities
    in the same order (Sec. 3.4). This equals ``||C_V - C_I||_F^2 / N``. The
    features are the aggregated descriptors ``f^A`` (the K part features
    concatenated).

    Args:
        features_v: ``N x D`` visible aggregated features.
        features_i: ``N x D`` infrared aggregated features; row j pairs with ``features_v[j]``.
        eps: Variance regulariser of :func:`pearson_matrix`.

    Returns:
        Scalar loss (0 for N = 1).
    """
    if features_v.ndim != 2 or features_i.shape != features_v.shape:
        raise ValueError(f"features_v, features_i: expected two N x D matrices of the same shape, got "
                         f"{tuple(features_v.shape)} and {tuple(features_i.shape)}")
    if features_v.shape[0] < 1:
        raise ValueError("features_v: expected at least one pair (N >= 1), got an empty batch")
    diff = pearson_matrix(features_v, eps) - pearson_matrix(features_i, eps)
    return diff.pow(2).sum() / features_v.shape[0]
