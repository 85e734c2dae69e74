"""Weighted regularisation triplet (WRT) of the AGW baseline (Ye et al., TPAMI 2021).

AGW ("Attention Generalized mean pooling with Weighted triplet") is the
baseline that Alehdaghi et al. (seed 004, Sec. 4.2, ref. [52]) build LUPI on.
Its metric loss needs no margin: every positive and every negative of an
anchor takes part, weighted by a softmax over their distances, and the
difference goes through the soft margin ``log(1 + exp(.))``.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from .triplet import pairwise_euclidean


def _softmax_weights(values: Tensor, mask: Tensor) -> Tensor:
    """Row-wise softmax of ``values`` restricted to ``mask`` (0 outside it; rows with an empty mask are 0)."""
    masked = values.masked_fill(~mask, float("-inf"))
    row_max = masked.amax(dim=1, keepdim=True).detach()  # softmax is shift-invariant
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    e = torch.exp(masked - row_max)  # exp(-inf) = 0 outside the mask
    z = e.sum(dim=1, keepdim=True)
    return e / z.clamp(min=torch.finfo(e.dtype).tiny)


def weighted_regularization_triplet(features: Tensor, labels: Tensor) -> Tensor:
    """Weighted regularisation triplet loss of AGW (Ye et al., TPAMI 2021, the "WRT" equation of the AGW baseline).

    For each anchor ``i`` with positive set ``P_i`` (same label, other samples)
    and negative set ``N_i`` (other labels), with Euclidean distances ``d``::

        w_ij^p = exp(d_ij) / sum_{j' in P_i} exp(d_ij')        (far positives weigh more)
        w_ik^n = exp(-d_ik) / sum_{k' in N_i} exp(-d_ik')      (close negatives weigh more)
        L_wrt(i) = log(1 + exp(sum_j w_ij^p d_ij - sum_k w_ik^n d_ik))

    and the loss is the mean of ``L_wrt(i)`` over the anchors that have at least
    one positive and one negative. The weights are differentiated through, as in
    AGW's reference implementation. Unlike that implementation (which lets the
    anchor count as its own positive, with distance ~0), ``P_i`` excludes the
    anchor itself, as the equation's positive *pairs* do.

    Args:
        features: ``N x D`` features (AGW: the GeM-pooled features before the BN neck).
        labels: ``N`` identity labels.

    Returns:
        Scalar loss; 0 (connected to the graph) when no anchor has both a
        positive and a negative.
    """
    if features.ndim != 2:
        raise ValueError(f"features: expected an N x D matrix, got shape {tuple(features.shape)}")
    if labels.ndim != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(f"labels: expected a vector of {features.shape[0]} labels, got shape {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex:
        raise ValueError(f"labels: expected integer identity labels, got dtype {labels.dtype}")
    labels = labels.to(features.device)
    dist = pairwise_euclidean(features, features)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=features.device)
    pos, neg = same & ~eye, ~same
    valid = pos.any(dim=1) & neg.any(dim=1)
    if not bool(valid.any()):
        return features.sum() * 0.0
    d_pos = (_softmax_weights(dist, pos) * dist).sum(dim=1)
    d_neg = (_softmax_weights(-dist, neg) * dist).sum(dim=1)
    return F.softplus(d_pos[valid] - d_neg[valid]).mean()
