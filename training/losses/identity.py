"""Identity (softmax) loss: Hafner et al. (2022) Eq. (6)."""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F


def softmax_loss(logits: Tensor, labels: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy over the training identities, Hafner et al. (2022) Eq. (6).

    ``L_soft = -1/N * sum_i log( exp(W_(y_i) F(x_i) + b_(y_i)) / sum_j exp(W_(j) F(x_i) + b_(j)) )``

    where ``logits[i, j] = W_(j) F(x_i) + b_(j)`` come from the classifier on top
    of the embedding. With ``label_smoothing = eps > 0`` the one-hot target is
    mixed with the uniform distribution, ``(1 - eps) * onehot + eps / C``
    (Szegedy et al., 2016); ``eps = 0`` is Eq. (6) exactly.

    Args:
        logits: ``N x C`` class scores.
        labels: ``N`` integer labels in ``[0, C)``.
        label_smoothing: ``eps`` in ``[0, 1)``.

    Returns:
        Scalar mean loss over the batch.
    """
    if logits.ndim != 2:
        raise ValueError(f"logits: expected an N x C matrix, got shape {tuple(logits.shape)}")
    if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels: expected a vector of {logits.shape[0]} labels, got shape {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex:
        raise ValueError(f"labels: expected integer class indices, got dtype {labels.dtype}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing: expected a value in [0, 1), got {label_smoothing!r}")
    return F.cross_entropy(logits, labels.long(), label_smoothing=label_smoothing)
