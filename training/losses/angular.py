"""Enumerate Angular Triplet (EAT) loss of Gao et al. (2022), Eq. (6)-(19).

Gao, Shao, Wu, Yang, Yu, *Learning compact and representative features for
cross-modality person re-identification* (2022), Sec. 3.3. All similarities are
cosines of the embedded features; the clamp ``[.]_+`` keeps only positive
cosines (Eq. 7), the margin is 1 (Sec. 3.3), and the exponential form (Eq.
15-17) plus the compactness term ``C`` (Eq. 18) give the final loss (Eq. 19).

Reading of the paper where its text is ambiguous:

* Eq. (11) prints ``[cos(V_a^ir, V_n^rgb)]_+`` as the positive term; by the
  symmetry with Eq. (10) and by Eq. (16), which repeats the same term with
  ``V_p^rgb``, it is the positive and is implemented as such.
* Eq. (7) drops the hinge of Eq. (6) because with margin 1 the argument is never
  negative (each clamped cosine lies in [0, 1]). The hinge of Eq. (6) is kept
  here: it is the identity at ``margin >= 1`` and keeps the loss a ranking loss
  for smaller margins (Sec. 4.3 mentions a triplet margin of 0.3).
* Batches: ``1/N sum_{I_a, I_p, I_n}`` is taken over every valid triplet of the
  batch (anchor ``a``; positive ``p`` of the same identity in the *other*
  modality, as in every term of Eq. 8-11; negative ``n`` of another identity in
  the modality named by the term). On the paper's tuple batches this enumerates
  the tuple; on larger batches it is the mean of the per-tuple term over the
  random choice of positive and negative that the paper's sampler makes.
* Eq. (18) takes the cosine between the ``r``-th element of the "local deep
  descriptor" ``f`` and its mean; a cosine needs vectors, so ``f_r`` is the
  ``r``-th of the ``R = h*w`` local (per-position) descriptors of the final
  feature map of the anchor and ``f_bar`` their mean over the positions.
"""

from __future__ import annotations

from numbers import Real

import torch
from torch import Tensor

EPS = 1e-12
"""Squared norms at or below this are treated as zero vectors (cosine 0, no gradient)."""


def _cosine(a: Tensor, b: Tensor) -> Tensor:
    """Cosine along the last dimension (broadcasting); 0 with zero gradient where a vector is ~0."""
    na, nb = a.pow(2).sum(-1), b.pow(2).sum(-1)
    ok = (na > EPS) & (nb > EPS)
    cos = (a * b).sum(-1) / (na.clamp_min(EPS).sqrt() * nb.clamp_min(EPS).sqrt())
    return torch.where(ok, cos, torch.zeros_like(cos))


def pairwise_cosine(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarities ``cos(a_i, b_j)``, the similarity of Gao et al. (2022) Eq. (6)-(18).

    A zero row gives cosine 0 against everything, with a zero (finite) gradient.

    Args:
        a: ``N x D`` features.
        b: ``M x D`` features.

    Returns:
        ``N x M`` cosines.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a, b: expected N x D and M x D matrices with the same D, got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    na, nb = a.pow(2).sum(1), b.pow(2).sum(1)
    ok = (na > EPS).unsqueeze(1) & (nb > EPS).unsqueeze(0)
    cos = (a @ b.t()) / (na.clamp_min(EPS).sqrt().unsqueeze(1) * nb.clamp_min(EPS).sqrt().unsqueeze(0))
    return torch.where(ok, cos, torch.zeros_like(cos))


def _check_margin(margin: float) -> float:
    if not isinstance(margin, Real) or isinstance(margin, bool) or margin < 0:
        raise ValueError(f"margin: expected a number >= 0, got {margin!r}")
    return float(margin)


def _check_labels(labels: Tensor, n: int, name: str) -> Tensor:
    if not torch.is_tensor(labels) or labels.ndim != 1 or labels.shape[0] != n:
        shape = tuple(labels.shape) if torch.is_tensor(labels) else type(labels).__name__
        raise ValueError(f"{name}: expected a vector of {n} labels, got {shape}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"{name}: expected integer identity labels, got dtype {labels.dtype}")
    return labels


def angular_term(cos_an: Tensor, cos_ap: Tensor, margin: float = 1.0) -> Tensor:
    """The bracket of Gao et al. (2022) Eq. (7): ``[ [cos(V_a,V_n)]_+ - [cos(V_a,V_p)]_+ + margin ]_+``.

    Both cosines are clamped at 0 (Eq. 7); the outer hinge is that of Eq. (6) and is
    inactive for ``margin >= 1``. Broadcasts like ``cos_an - cos_ap``.
    """
    margin = _check_margin(margin)
    return torch.relu(torch.relu(cos_an) - torch.relu(cos_ap) + margin)


def angular_triplet(anchor: Tensor, positive: Tensor, negative: Tensor, *, margin: float = 1.0,
                    exponential: bool = False) -> Tensor:
    """Angular triplet loss on explicit triplets, Gao et al. (2022) Eq. (7) (Eq. 15-16 terms if exponential).

    ``L_AT = 1/N sum_i ([cos(V_a,V_n)]_+ - [cos(V_a,V_p)]_+ + 1)``; with
    ``exponential=True`` each summand is replaced by its exponential, which is one
    of the four sums of Eq. (15)-(16). Row ``i`` of the three inputs is one triplet.

    Args:
        anchor: ``N x D`` anchor features ``V_a``.
        positive: ``N x D`` positive features ``V_p``.
        negative: ``N x D`` negative features ``V_n``.
        margin: The margin (1 in the paper, Sec. 3.3).
        exponential: Use ``e^(.)`` of each term (Eq. 15-16).

    Returns:
        Scalar mean over the ``N`` triplets.
    """
    if anchor.ndim != 2 or anchor.shape[0] == 0 or positive.shape != anchor.shape or negative.shape != anchor.shape:
        raise ValueError(f"anchor, positive, negative: expected three non-empty N x D matrices of one shape, got "
                         f"{tuple(anchor.shape)}, {tuple(positive.shape)}, {tuple(negative.shape)}")
    term = angular_term(_cosine(anchor, negative), _cosine(anchor, positive), margin)
    return (term.exp() if exponential else term).mean()


def _enumerated(cos_ap: Tensor, pos: Tensor, cos_an: Tensor, neg: Tensor, margin: float,
                exponential: bool) -> Tensor:
    """Mean of the (exponential) angular term over all anchors a, positives p (pos[a,p]), negatives n (neg[a,n])."""
    term = angular_term(cos_an.unsqueeze(1), cos_ap.unsqueeze(2), margin)       # A x P x N
    if exponential:
        term = term.exp()
    valid = pos.unsqueeze(2) & neg.unsqueeze(1)
    if not bool(valid.any()):
        return (cos_ap.sum() + cos_an.sum()) * 0.0
    return term[valid].mean()


def enumerate_angular_triplet(rgb: Tensor, ir: Tensor, labels: Tensor, *, ir_labels: Tensor | None = None,
                              margin: float = 1.0, exponential: bool = True) -> dict[str, Tensor]:
    """Bi-directional Enumerate Angular Triplet loss, Gao et al. (2022) Eq. (8)-(17).

    With ``T(a, p, n) = [cos(a,n)]_+ - [cos(a,p)]_+ + 1`` (``e^T`` if exponential):

    * ``crgb`` (Eq. 8 / first sum of Eq. 15): anchor rgb, positive ir, negative ir;
    * ``srgb`` (Eq. 10 / second sum of Eq. 15): anchor rgb, positive ir, negative rgb;
    * ``cir``  (Eq. 9 / first sum of Eq. 16): anchor ir, positive rgb, negative rgb;
    * ``sir``  (Eq. 11 / second sum of Eq. 16): anchor ir, positive rgb, negative ir;
    * ``rgb = crgb + srgb`` (Eq. 12 / 15), ``ir = cir + sir`` (Eq. 13 / 16), ``eat = rgb + ir`` (Eq. 14 / 17).

    Each of the four terms is the mean over every valid triplet of the batch
    (positive: same identity, other modality; negative: other identity); a term
    without any valid triplet is 0 (still connected to the graph).

    Args:
        rgb: ``B_v x D`` visible features.
        ir: ``B_i x D`` infrared features.
        labels: ``B_v`` identity labels of ``rgb``; also of ``ir`` unless ``ir_labels`` is given.
        ir_labels: ``B_i`` identity labels of ``ir``.
        margin: The margin (1, Sec. 3.3).
        exponential: Eq. (15)-(17) (True) or Eq. (8)-(14) (False).

    Returns:
        ``{"crgb", "srgb", "cir", "sir", "rgb", "ir", "eat"}`` scalars.
    """
    margin = _check_margin(margin)
    if rgb.ndim != 2 or ir.ndim != 2 or rgb.shape[1] != ir.shape[1]:
        raise ValueError(f"rgb, ir: expected B_v x D and B_i x D feature matrices with the same D, got shapes "
                         f"{tuple(rgb.shape)} and {tuple(ir.shape)}")
    lv = _check_labels(labels, rgb.shape[0], "labels").to(rgb.device)
    li = lv if ir_labels is None else _check_labels(ir_labels, ir.shape[0], "ir_labels").to(rgb.device)
    if ir_labels is None and rgb.shape[0] != ir.shape[0]:
        raise ValueError(f"ir_labels: rgb has {rgb.shape[0]} rows and ir {ir.shape[0]}; give ir_labels")
    cos_vi, cos_vv, cos_ii = pairwise_cosine(rgb, ir), pairwise_cosine(rgb, rgb), pairwise_cosine(ir, ir)
    same_vi = lv.unsqueeze(1) == li.unsqueeze(0)
    diff_vv = lv.unsqueeze(1) != lv.unsqueeze(0)
    diff_ii = li.unsqueeze(1) != li.unsqueeze(0)
    out = {
        "crgb": _enumerated(cos_vi, same_vi, cos_vi, ~same_vi, margin, exponential),
        "srgb": _enumerated(cos_vi, same_vi, cos_vv, diff_vv, margin, exponential),
        "cir": _enumerated(cos_vi.t(), same_vi.t(), cos_vi.t(), ~same_vi.t(), margin, exponential),
        "sir": _enumerated(cos_vi.t(), same_vi.t(), cos_ii, diff_ii, margin, exponential),
    }
    out["rgb"] = out["crgb"] + out["srgb"]
    out["ir"] = out["cir"] + out["sir"]
    out["eat"] = out["rgb"] + out["ir"]
    return out


def _compactness_one(fmap: Tensor, reduction: str, name: str) -> Tensor:
    if fmap.ndim != 4 or 0 in fmap.shape:
        raise ValueError(f"{name}: expected a non-empty B x C x h x w feature map, got shape {tuple(fmap.shape)}")
    local = fmap.flatten(2).transpose(1, 2)                 # B x R x C: the R local descriptors f_r
    mean = local.mean(dim=1, keepdim=True)                  # B x 1 x C: f_bar
    e = _cosine(local, mean).exp()                          # B x R
    return e.sum() if reduction == "sum" else e.mean()


def compactness(rgb_map: Tensor, ir_map: Tensor, *, reduction: str = "mean") -> Tensor:
    """Compactness term ``C`` of Gao et al. (2022) Eq. (18).

    ``C = sum_i sum_r e^{cos(f_r(V_a^rgb), f_bar(V_a^rgb))} + sum_i sum_r e^{cos(f_r(V_a^ir), f_bar(V_a^ir))}``

    ``f_r`` is the ``r``-th of the ``R = h*w`` local descriptors (the ``C``-vector at
    one position) of an anchor's feature map and ``f_bar`` their mean (see the module
    docstring). ``reduction="sum"`` is Eq. (18) as printed; ``"mean"`` (default)
    divides each modality's double sum by ``N*R``, the ``1/N`` every other term of
    the paper carries, so that the unit weights of Eq. (19)/(21) do not let ``C``
    (``N*R`` terms of at least ``e^-1``) swamp the other losses.

    Args:
        rgb_map: ``N x C x h x w`` feature maps of the visible anchors.
        ir_map: ``N' x C x h' x w'`` feature maps of the infrared anchors.
        reduction: ``"mean"`` or ``"sum"``.

    Returns:
        Scalar ``C`` (sum of the two modalities' terms).
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction: expected 'mean' or 'sum', got {reduction!r}")
    return _compactness_one(rgb_map, reduction, "rgb_map") + _compactness_one(ir_map, reduction, "ir_map")
