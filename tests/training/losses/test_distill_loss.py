"""Cross-modal distillation loss, Hafner et al. (2022) Eq. (3)."""

from __future__ import annotations

import pytest
import torch

from reidstream.training.losses import embedding_mse


def test_matches_eq3_by_hand():
    student = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    teacher = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    # ||.||^2 per pair: 0 + 4 + 9 = 13 and 1 + 1 + 1 = 3 -> (13 + 3) / 2
    assert embedding_mse(student, teacher).item() == pytest.approx(8.0)
    # D times torch's element-wise mean
    assert embedding_mse(student, teacher).item() == pytest.approx(
        3 * torch.nn.functional.mse_loss(student, teacher).item())


def test_gradients_reach_only_the_student():
    student = torch.randn(4, 8, requires_grad=True)
    teacher = torch.randn(4, 8, requires_grad=True)
    embedding_mse(student, teacher).backward()
    assert teacher.grad is None
    torch.testing.assert_close(student.grad, 2 * (student - teacher).detach() / 4)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="teacher"):
        embedding_mse(torch.zeros(4, 8), torch.zeros(4, 7))
    with pytest.raises(ValueError, match="student"):
        embedding_mse(torch.zeros(8), torch.zeros(8))
