"""Softmax identity loss, Hafner et al. (2022) Eq. (6)."""

from __future__ import annotations

import math

import pytest
import torch

from reidstream.training.losses import softmax_loss


def test_matches_eq6_by_hand():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = torch.tensor([0, 1])
    expected = 0.0
    for i, y in enumerate(labels.tolist()):
        row = logits[i].tolist()
        expected -= math.log(math.exp(row[y]) / sum(math.exp(v) for v in row))
    expected /= 2
    assert softmax_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_label_smoothing():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    eps = 0.3
    logp = torch.log_softmax(logits, dim=1)[0]
    target = torch.full((3,), eps / 3)
    target[0] += 1 - eps
    expected = -(target * logp).sum().item()
    assert softmax_loss(logits, torch.tensor([0]), label_smoothing=eps).item() == pytest.approx(expected, rel=1e-6)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="logits"):
        softmax_loss(torch.randn(3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="labels"):
        softmax_loss(torch.randn(3, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        softmax_loss(torch.randn(2, 2), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="label_smoothing"):
        softmax_loss(torch.randn(2, 2), torch.tensor([0, 1]), label_smoothing=1.0)
