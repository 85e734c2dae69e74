"""Cross-modal embedding distillation loss: Hafner et al. (2022) Eq. (3)."""

from __future__ import annotations

from torch import Tensor


def embedding_mse(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean squared Euclidean distance between paired embeddings, Hafner et al. (2022) Eq. (3).

    ``L_MSE = 1/N * sum_i || F_fr(x_m1,i) - G(x_m2,i) ||^2``

    The squared norm sums over the embedding dimensions and the mean runs over
    the ``N`` pairs only (this is ``D`` times torch's element-wise
    ``mse_loss``). The teacher ``F_fr`` is frozen: its embeddings are detached,
    so gradients reach only the student ``G``.

    Args:
        student: ``N x D`` embeddings ``G(x_m2,i)`` of the second modality
            (any trailing shape; everything after the batch axis is summed).
        teacher: Embeddings ``F_fr(x_m1,i)`` of the paired first-modality images,
            same shape.

    Returns:
        Scalar loss.
    """
    if student.shape != teacher.shape:
        raise ValueError(f"teacher: expected the student's shape {tuple(student.shape)}, "
                         f"got {tuple(teacher.shape)}")
    if student.ndim < 2 or student.shape[0] == 0:
        raise ValueError(f"student: expected N x D embeddings with N >= 1, got shape {tuple(student.shape)}")
    diff = student - teacher.detach().to(student.dtype)
    return diff.pow(2).flatten(1).sum(dim=1).mean()
