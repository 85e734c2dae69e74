"""Small pieces shared by the training methods."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn


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


def check_vi_batch(batch: Mapping[str, Any], modalities: Sequence[str]) -> tuple[Tensor, ...]:
    """Returns ``(images of each modality..., labels)`` of a cross-modality batch, or raises ValueError.

    The halves are identity-aligned (:func:`..data.torch_data.collate_cross_modal`): image ``i`` of every
    modality has label ``i``, so all modalities hold the same number of images of one shape.
    """
    if not isinstance(batch, Mapping):
        raise ValueError(f"batch: expected a mapping, got {type(batch).__name__}")
    missing = [k for k in (*modalities, "label") if k not in batch]
    if missing:
        raise ValueError(f"batch: missing keys {missing}; expected {[*modalities, 'label']}")
    labels = batch["label"]
    if not isinstance(labels, Tensor) or labels.ndim != 1 or labels.dtype.is_floating_point:
        raise ValueError("batch['label']: expected a 1-d integer tensor")
    images = []
    for m in modalities:
        x = batch[m]
        want = tuple(images[0].shape) if images else (labels.shape[0], 3, "H", "W")
        if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[0] != labels.shape[0] \
                or (images and x.shape != images[0].shape):
            raise ValueError(f"batch[{m!r}]: expected images paired one per label with {modalities[0]!r}, all of "
                             f"one shape {want}, got "
                             f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
        images.append(x)
    return (*images, labels)
