"""Small pieces shared by the training methods."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class EmbeddingHead(nn.Module):
    """Wraps a network whose forward returns a dict; forward returns only ``"embedding"``.

    Args:
        net: A :class:`~reidstream.training.models.ReIDNet` (or anything returning that dict).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["embedding"]


class ZeroPadInput(nn.Module):
    """Zero-padding network input (Wu et al. 2017): a one-channel image in slot ``slot`` of two.

    Args:
        net: Network with ``in_channels=2``.
        slot: 0 for the first modality, 1 for the second; the other channel is zero.
    """

    def __init__(self, net: nn.Module, slot: int) -> None:
        super().__init__()
        if slot not in (0, 1):
            raise ValueError(f"slot: expected 0 or 1, got {slot}")
        self.net = net
        self.slot = slot

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """``B x 1 x H x W`` -> ``B x 2 x H x W`` with the image in channel ``slot``."""
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"zero-padding input: expected B x 1 x H x W images, got shape {tuple(x.shape)}")
        zeros = torch.zeros_like(x)
        return torch.cat([x, zeros] if self.slot == 0 else [zeros, x], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.pad(x))["embedding"]


def embedder_spec(kind: str, net: nn.Module, **options: Any) -> dict[str, Any]:
    """Checkpoint entry of one embedding network: its kind, constructor config, options and module."""
    return {"model": kind, "config": net.config(), "options": dict(options), "module": net}

