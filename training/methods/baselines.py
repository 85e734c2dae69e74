"""Cross-modal baselines of Wu et al. (ICCV 2017) as compared by Hafner et al., Tables 3-4.

* one-stream: one network embeds both modalities (all parameters shared);
* two-stream: per-modality low stages, shared high stages and embedding;
* zero-padding: one network on two-channel inputs, the modality's image in its
  own channel and zeros in the other.

All are trained with the softmax identity loss (Eq. 6) on images of both
modalities; early stopping watches the mean cross-modal validation mAP.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reidstream.training.losses import softmax_loss
from reidstream.training.models import ReIDNet, TwoStreamNet

from ._common import EmbeddingHead, ZeroPadInput, embedder_spec


class _Baseline(nn.Module):
    monitor = "val/mAP"
    monitor_mode = "max"
    sampler = "shuffle"

    def __init__(self, net: nn.Module, modalities: tuple[str, str]) -> None:
        super().__init__()
        if len(modalities) != 2 or modalities[0] == modalities[1]:
            raise ValueError(f"modalities: expected two different modalities, got {modalities}")
        self.net = net
        self._modalities = tuple(modalities)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities a training batch must carry."""
        return self._modalities

    @property
    def input_channels(self) -> int:
        """Channels of the preprocessed input images."""
        return 3

    def _logits(self, x: torch.Tensor, slot: int) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Mean softmax loss (Eq. 6) over the images of both modalities: ``{"loss", "acc"}``."""
        labels = batch["label"]
        losses, hits = [], []
        for slot, m in enumerate(self._modalities):
            logits = self._logits(batch[m], slot)
            losses.append(softmax_loss(logits, labels))
            hits.append((logits.argmax(1) == labels).float().mean())
        return {"loss": sum(losses) / len(losses), "acc": (sum(hits) / len(hits)).detach()}


class OneStreamMethod(_Baseline):
    """One-stream network: the same ReIDNet for both modalities."""

    def __init__(self, net: ReIDNet, modalities: tuple[str, str] = ("rgb", "depth")) -> None:
        if net.classifier is None:
            raise ValueError("the one-stream baseline needs a network with a classifier (num_classes > 0)")
        super().__init__(net, modalities)

    def _logits(self, x: torch.Tensor, slot: int) -> torch.Tensor:
        return self.net(x)["logits"]

    def embedders(self) -> dict[str, nn.Module]:
        """Modality -> embedding module (the same network for both)."""
        return {m: EmbeddingHead(self.net) for m in self._modalities}

    def embedder_specs(self) -> dict[str, dict[str, Any]]:
        """Modality -> self-contained description of its embedding network."""
        return {m: embedder_spec("reidnet", self.net) for m in self._modalities}


class TwoStreamMethod(_Baseline):
    """Two-stream network: modality-specific low stages, shared high stages."""

    def __init__(self, net: TwoStreamNet, modalities: tuple[str, str] = ("rgb", "depth")) -> None:
        super().__init__(net, modalities)

    def _logits(self, x: torch.Tensor, slot: int) -> torch.Tensor:
        return self.net(x, self._modalities[slot])["logits"]

    def embedders(self) -> dict[str, nn.Module]:
        """Modality -> its branch of the two-stream network."""
        return {m: self.net.branch(m) for m in self._modalities}

    def embedder_specs(self) -> dict[str, dict[str, Any]]:
        """Modality -> self-contained description of its branch."""
        return {m: embedder_spec("two_stream", self.net, branch=m) for m in self._modalities}


class ZeroPaddingMethod(_Baseline):
    """Zero-padding network: one-channel images placed in their modality's channel of two."""

    def __init__(self, net: ReIDNet, modalities: tuple[str, str] = ("rgb", "depth")) -> None:
        if net.classifier is None:
            raise ValueError("the zero-padding baseline needs a network with a classifier (num_classes > 0)")
        if net.config()["in_channels"] != 2:
            raise ValueError(f"the zero-padding baseline needs in_channels=2, got {net.config()['in_channels']}")
        super().__init__(net, modalities)
        self.pads = [ZeroPadInput(net, 0), ZeroPadInput(net, 1)]

    @property
    def input_channels(self) -> int:
        """One channel per image: luminance for colour, the single channel otherwise."""
        return 1

    def _logits(self, x: torch.Tensor, slot: int) -> torch.Tensor:
        return self.net(self.pads[slot].pad(x))["logits"]

    def embedders(self) -> dict[str, nn.Module]:
        """Modality -> network with its input zero-padded into the modality's channel."""
        return {m: ZeroPadInput(self.net, slot) for slot, m in enumerate(self._modalities)}

    def embedder_specs(self) -> dict[str, dict[str, Any]]:
        """Modality -> self-contained description of its zero-padded network."""
        return {m: embedder_spec("zero_padding", self.net, slot=slot) for slot, m in enumerate(self._modalities)}
