"""Cross-Modality Knowledge Distillation (CMKD) loss of Gao et al. (2022), Eq. (5).

Gao, Shao, Wu, Yang, Yu, *Learning compact and representative features for
cross-modality person re-identification* (2022), Sec. 3.2: at the end of the
modality-specific feature-extraction stage (ResNet stages 0-1 of each branch),
the features of an anchor in one modality are pulled towards those of a positive
(same identity) in the other modality, in both directions.

Reading of the paper:

* ``V`` is the whole output of the modality-specific stage (the ``C x h x w``
  map, flattened), not a pooled vector: the loss acts "in the feature extraction
  stage", before any pooling, and the authors' released code applies it to the
  ``layer1`` maps.
* ``||.||_2^2`` over that flattened map grows with ``C*h*w`` (786,432 values for
  ResNet-50 at 384 x 128), which would make the unit weight of Eq. (21)
  meaningless; ``reduction="mean"`` (default) divides it by the map size, as the
  authors' code does (``nn.MSELoss`` on each direction); ``"sum"`` is Eq. (5)
  as printed.
* Pairs ``(I_a, I_p)``: see :func:`partner_index`.
"""

from __future__ import annotations

import torch
from torch import Tensor


def cmkd_loss(rgb_anchor: Tensor, ir_anchor: Tensor, rgb_positive: Tensor, ir_positive: Tensor, *,
              reduction: str = "mean") -> Tensor:
    """CMKD loss, Gao et al. (2022) Eq. (5).

    ``L_CMKD = 1/N sum_{(I_a, I_p)} ||V_a^rgb - V_p^ir||_2^2 + ||V_a^ir - V_p^rgb||_2^2``

    Row ``i`` of the four inputs is one anchor/positive pair: the anchor's visible
    and infrared features and the positive's visible and infrared features (all
    four of one identity).

    Args:
        rgb_anchor: ``N x ...`` visible features of the anchors ``V_a^rgb``.
        ir_anchor: ``N x ...`` infrared features of the anchors ``V_a^ir``.
        rgb_positive: ``N x ...`` visible features of the positives ``V_p^rgb``.
        ir_positive: ``N x ...`` infrared features of the positives ``V_p^ir``.
        reduction: ``"mean"`` (each squared distance divided by the feature size ``D``)
            or ``"sum"`` (Eq. 5 exactly).

    Returns:
        Scalar loss (mean over the ``N`` pairs).
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction: expected 'mean' or 'sum', got {reduction!r}")
    shapes = [tuple(t.shape) for t in (rgb_anchor, ir_anchor, rgb_positive, ir_positive)]
    if len(set(shapes)) != 1 or rgb_anchor.ndim < 2 or 0 in shapes[0]:
        raise ValueError(f"rgb_anchor, ir_anchor, rgb_positive, ir_positive: expected four non-empty N x ... "
                         f"tensors of one shape, got {shapes}")
    d = (rgb_anchor - ir_positive).pow(2).flatten(1).sum(1) + (ir_anchor - rgb_positive).pow(2).flatten(1).sum(1)
    if reduction == "mean":
        d = d / rgb_anchor[0].numel()
    return d.mean()


def partner_index(labels: Tensor) -> Tensor:
    """Positive of each anchor for Eq. (5): the next sample of the same identity, cyclically.

    In a batch whose visible row ``i`` and infrared row ``i`` share identity
    ``labels[i]`` (the project's cross-modal batches), anchor pair ``i`` is paired
    with pair ``partner[i]``: the next row of the same label in batch order, wrapping
    round to the first; a label seen once is paired with itself. Each row is thus an
    anchor once and a positive once. On the paper's tuple batches (an anchor pair and
    a positive pair per identity, Sec. 4.3) this gives exactly the paper's
    anchor/positive pairs, in both roles.

    Args:
        labels: ``B`` integer identity labels.

    Returns:
        ``B`` long indices ``partner`` with ``labels[partner] == labels``.
    """
    if not torch.is_tensor(labels) or labels.ndim != 1:
        raise ValueError(f"labels: expected a vector of identity labels, got "
                         f"{tuple(labels.shape) if torch.is_tensor(labels) else type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"labels: expected integer identity labels, got dtype {labels.dtype}")
    partner = torch.arange(labels.shape[0], device=labels.device)
    for value in torch.unique(labels):
        rows = torch.nonzero(labels == value).flatten()
        partner[rows] = rows.roll(-1)
    return partner
