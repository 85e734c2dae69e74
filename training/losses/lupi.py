"""Losses of LUPI (Alehdaghi et al., seed 004, Sec. 3.3): intermediate dual triplet (Eq. 5), colour-free (Eq. 6).

Notation of the paper: ``V`` visible, ``T`` infrared (or thermal) and ``Z``
the intermediate "random grayscale" images made from ``V`` (Eq. 4); ``F^v``,
``F^t``, ``F^z`` their features. ``Z_i`` is made from ``V_i``, so
``f_i^v`` and ``f_i^z`` are paired by index.
"""

from __future__ import annotations

from numbers import Real

import torch
from torch import Tensor
from torch.nn import functional as F

from .triplet import pairwise_euclidean


def _check_set(name: str, feats: Tensor, labels: Tensor) -> None:
    if feats.ndim != 2:
        raise ValueError(f"{name}: expected an N x D matrix, got shape {tuple(feats.shape)}")
    if labels.ndim != 1 or labels.shape[0] != feats.shape[0]:
        raise ValueError(f"labels of {name}: expected a vector of {feats.shape[0]} labels, got shape "
                         f"{tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex:
        raise ValueError(f"labels of {name}: expected integer identity labels, got dtype {labels.dtype}")


def _nonneg(name: str, value: float) -> float:
    if not isinstance(value, Real) or isinstance(value, bool) or not value >= 0:
        raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
    return float(value)


def cross_modal_hard_triplet(anchors: Tensor, anchor_labels: Tensor, positives: Tensor, positive_labels: Tensor,
                             negatives: Tensor, negative_labels: Tensor, margin: float = 0.3) -> Tensor:
    """One term of LUPI's Eq. (5): anchors from one set, positives from a second, negatives from a third.

    ``E_a [ M + D(f_a, f_p) - D(f_a, f_n) ]_+`` with Euclidean ``D``, the
    hardest positive ``p`` (farthest sample of the positive set with the
    anchor's label) and the hardest negative ``n`` (closest sample of the
    negative set with another label), averaged over the anchors that have both.
    Eq. (5) prints the bracket as ``M - D_ap + D_an`` without the hinge; that
    sign would push positives apart, so the standard triplet hinge is used. The
    expectation over triplets is realised by batch-hard mining, as in the AGW
    code base ([52]) the authors built on.

    Args:
        anchors: ``Na x D`` anchor features; ``anchor_labels``: their ``Na`` labels.
        positives: ``Np x D`` features the positives are taken from; ``positive_labels``: ``Np`` labels.
        negatives: ``Nn x D`` features the negatives are taken from; ``negative_labels``: ``Nn`` labels.
        margin: ``M`` (>= 0); the paper uses AGW's, 0.3.

    Returns:
        Scalar loss; 0 (connected to the graph) when no anchor has a positive and a negative.
    """
    margin = _nonneg("margin", margin)
    for name, f, y in (("anchors", anchors, anchor_labels), ("positives", positives, positive_labels),
                       ("negatives", negatives, negative_labels)):
        _check_set(name, f, y)
    if not anchors.shape[1] == positives.shape[1] == negatives.shape[1]:
        raise ValueError(f"anchors, positives, negatives: expected the same feature size, got "
                         f"{anchors.shape[1]}, {positives.shape[1]}, {negatives.shape[1]}")
    dev = anchors.device
    ya, yp, yn = anchor_labels.to(dev), positive_labels.to(dev), negative_labels.to(dev)
    pos = ya.unsqueeze(1) == yp.unsqueeze(0)
    neg = ya.unsqueeze(1) != yn.unsqueeze(0)
    d_ap = pairwise_euclidean(anchors, positives).masked_fill(~pos, float("-inf")).amax(dim=1)
    d_an = pairwise_euclidean(anchors, negatives).masked_fill(~neg, float("inf")).amin(dim=1)
    valid = pos.any(dim=1) & neg.any(dim=1)
    if not bool(valid.any()):
        return anchors.sum() * 0.0 + positives.sum() * 0.0 + negatives.sum() * 0.0
    return torch.relu(margin + d_ap[valid] - d_an[valid]).mean()


TRIPLET_REDUCTIONS = ("sum", "mean")
"""How :func:`intermediate_dual_triplet` combines its three terms: Eq. (5)'s sum or the authors' code's mean."""


def intermediate_dual_triplet(f_v: Tensor, f_t: Tensor, f_z: Tensor, y_v: Tensor, y_t: Tensor,
                              y_z: Tensor | None = None, *, margin: float = 0.3,
                              reduction: str = "sum") -> dict[str, Tensor]:
    """Intermediate dual triplet loss, LUPI Eq. (5).

    ``L_tri = E_(V,T,Z)[.] + E_(T,Z,V)[.] + E_(Z,V,T)[.]`` where ``(A, P, N)``
    names the sets of anchors, positives and negatives of each term (see
    :func:`cross_modal_hard_triplet`): visible anchors are pulled to infrared
    positives and pushed from intermediate negatives, infrared anchors pulled to
    intermediate positives and pushed from visible negatives, intermediate
    anchors pulled to visible positives and pushed from infrared negatives.

    Eq. (5) (Sec. 3.3) *sums* the three terms, and that is the default; the
    authors' released code *averages* them (``reduction="mean"``), which is the
    same loss at a third of the weight against ``L_id`` and ``lambda * L_c`` in
    Eq. (7)-(8) (and a third of the triplet gradient).

    Args:
        f_v: ``B x D`` visible features; ``y_v``: their labels.
        f_t: ``B' x D`` infrared features; ``y_t``: their labels.
        f_z: ``B x D`` intermediate features; ``y_z``: their labels (default ``y_v``: ``Z_i`` is made from ``V_i``).
        margin: ``M`` of Eq. (5).
        reduction: ``"sum"`` (Eq. 5) or ``"mean"`` (the authors' code) of the three terms.

    Returns:
        ``{"loss": their sum or mean, "vtz", "tzv", "zvt": the three terms}`` (0-d tensors).

    Raises:
        ValueError: On malformed features or labels, or an unknown ``reduction``.
    """
    if reduction not in TRIPLET_REDUCTIONS:
        raise ValueError(f"reduction: expected one of {TRIPLET_REDUCTIONS}, got {reduction!r}")
    y_z = y_v if y_z is None else y_z
    vtz = cross_modal_hard_triplet(f_v, y_v, f_t, y_t, f_z, y_z, margin)
    tzv = cross_modal_hard_triplet(f_t, y_t, f_z, y_z, f_v, y_v, margin)
    zvt = cross_modal_hard_triplet(f_z, y_z, f_v, y_v, f_t, y_t, margin)
    total = vtz + tzv + zvt
    return {"loss": total if reduction == "sum" else total / 3.0, "vtz": vtz, "tzv": tzv, "zvt": zvt}


def colour_free_loss(f_v: Tensor, f_z: Tensor, logits_v: Tensor, logits_z: Tensor, *, alpha_c: float = 0.5,
                     threshold: float = 0.5, l1_reduction: str = "mean") -> Tensor:
    """Colour-free loss, LUPI Eq. (6).

    For each visible image ``i`` and the intermediate image ``z_i`` made from it::

        l_i = |f_i^v - f_i^z|                          if |f_i^v - f_i^z| > threshold (0.5 in Eq. 6)
        l_i = alpha_c * KL(C(f_i^v) || C(f_i^z))       otherwise

    and ``L_c`` is the mean of ``l_i``. ``C`` is the identity classifier; its
    softmax probabilities enter the Kullback-Leibler divergence
    ``KL(p || q) = sum_c p_c (log p_c - log q_c)`` with ``p`` from the visible
    image, ``q`` from the intermediate one, both differentiated. The paper does
    not say how ``|.|`` reduces a vector: ``l1_reduction="mean"`` (default) uses
    the mean absolute difference per dimension, so the 0.5 switch does not depend
    on the feature size (with a 2048-d sum it would essentially never reach the
    KL branch); ``"sum"`` is the plain L1 norm. A distance of exactly the
    threshold takes the KL branch ("otherwise").

    Args:
        f_v: ``B x D`` visible features (the classifier's input).
        f_z: ``B x D`` features of the intermediate images, row ``i`` made from visible image ``i``.
        logits_v: ``B x C`` classifier outputs ``C(f^v)`` (before softmax).
        logits_z: ``B x C`` classifier outputs ``C(f^z)``.
        alpha_c: Weight of the KL branch (paper: 0.5).
        threshold: Feature distance above which the L1 branch is used (paper: 0.5).
        l1_reduction: ``"mean"`` or ``"sum"`` over the feature dimensions.

    Returns:
        Scalar loss.
    """
    if f_v.ndim != 2 or f_v.shape != f_z.shape:
        raise ValueError(f"f_v, f_z: expected two B x D matrices of the same shape, got {tuple(f_v.shape)} and "
                         f"{tuple(f_z.shape)}")
    if logits_v.ndim != 2 or logits_v.shape != logits_z.shape or logits_v.shape[0] != f_v.shape[0]:
        raise ValueError(f"logits_v, logits_z: expected two {f_v.shape[0]} x C matrices of the same shape, got "
                         f"{tuple(logits_v.shape)} and {tuple(logits_z.shape)}")
    if l1_reduction not in ("mean", "sum"):
        raise ValueError(f"l1_reduction: expected 'mean' or 'sum', got {l1_reduction!r}")
    alpha_c, threshold = _nonneg("alpha_c", alpha_c), _nonneg("threshold", threshold)
    diff = (f_v - f_z).abs()
    dist = diff.mean(dim=1) if l1_reduction == "mean" else diff.sum(dim=1)
    log_p, log_q = F.log_softmax(logits_v, dim=1), F.log_softmax(logits_z, dim=1)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=1)
    return torch.where(dist > threshold, dist, alpha_c * kl).mean()
