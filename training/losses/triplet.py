"""Batch-hard triplet loss: Hafner et al. (2022) Eq. (5) with the mining of Hermans et al. (2017)."""

from __future__ import annotations

from numbers import Real

import torch
from torch import Tensor


def pairwise_euclidean(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distances ``d(a_i, b_j) = ||a_i - b_j||`` (the metric of Hafner et al. Eq. 1-2).

    The squared distance is clamped at 1e-12 before the square root, so equal
    rows give distance 1e-6 and a finite (zero) gradient instead of NaN.

    Args:
        a: ``N x D`` embeddings.
        b: ``M x D`` embeddings.

    Returns:
        ``N x M`` distances.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a, b: expected N x D and M x D matrices with the same D, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    sq = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1).unsqueeze(0) - 2.0 * a @ b.t()
    return sq.clamp(min=1e-12).sqrt()


def _hardest(embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Returns (hardest-positive distance, hardest-negative distance, valid-anchor mask) per anchor."""
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings: expected an N x D matrix, got shape {tuple(embeddings.shape)}")
    if labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(f"labels: expected a vector of {embeddings.shape[0]} labels, got shape "
                         f"{tuple(labels.shape)}")
    labels = labels.to(embeddings.device)
    dist = pairwise_euclidean(embeddings, embeddings)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=embeddings.device)
    pos = same & ~eye
    neg = ~same
    d_ap = torch.where(pos, dist, torch.zeros_like(dist)).amax(dim=1)
    d_an = torch.where(neg, dist, torch.full_like(dist, float("inf"))).amin(dim=1)
    valid = pos.any(dim=1) & neg.any(dim=1)
    return d_ap, d_an, valid


def _check_margin(margin: float) -> float:
    if not isinstance(margin, Real) or isinstance(margin, bool) or margin < 0:
        raise ValueError(f"margin: expected a number >= 0, got {margin!r}")
    return float(margin)


def batch_hard_triplet(embeddings: Tensor, labels: Tensor, margin: float = 0.5) -> Tensor:
    """Triplet loss of Hafner et al. (2022) Eq. (5) with batch-hard mining (Hermans et al., 2017).

    ``L_tri = 1/T * sum_a [ max_p d(F(x_a), F(x_p)) - min_n d(F(x_a), F(x_n)) + m ]_+``

    Every sample of the batch is an anchor ``a``; its hardest positive ``p``
    (largest distance, same label, not itself) and hardest negative ``n``
    (smallest distance, other label) form its triplet. The hinge ``[.]_+`` is
    that of Hermans et al. (Eq. 5 prints the bracket without it). Unlike the
    paper's sum over triplets, the loss is averaged over the ``T`` anchors that
    have at least one positive and one negative, so its scale does not depend
    on the batch size. The paper uses ``m = 0.5`` (Sec. 4.1).

    Args:
        embeddings: ``N x D`` embeddings ``F(x)``.
        labels: ``N`` identity labels.
        margin: The margin ``m`` (>= 0).

    Returns:
        Scalar loss; 0 (connected to the graph) when no anchor has both a
        positive and a negative.
    """
    margin = _check_margin(margin)
    d_ap, d_an, valid = _hardest(embeddings, labels)
    if not bool(valid.any()):
        return embeddings.sum() * 0.0
    return torch.relu(d_ap[valid] - d_an[valid] + margin).mean()


@torch.no_grad()
def batch_hard_triplet_stats(embeddings: Tensor, labels: Tensor, margin: float = 0.5) -> dict[str, float]:
    """Diagnostics of :func:`batch_hard_triplet` for logging.

    Returns:
        ``{"valid_anchors": anchors with a positive and a negative,
        "active_fraction": share of those whose hinge is > 0,
        "mean_d_ap": mean hardest-positive distance, "mean_d_an": mean hardest-negative distance}``
        (0.0 for the fraction and means when there are no valid anchors).
    """
    margin = _check_margin(margin)
    d_ap, d_an, valid = _hardest(embeddings, labels)
    n = int(valid.sum())
    if n == 0:
        return {"valid_anchors": 0, "active_fraction": 0.0, "mean_d_ap": 0.0, "mean_d_an": 0.0}
    active = (d_ap[valid] - d_an[valid] + margin) > 0
    return {"valid_anchors": n, "active_fraction": float(active.float().mean()),
            "mean_d_ap": float(d_ap[valid].mean()), "mean_d_an": float(d_an[valid].mean())}
