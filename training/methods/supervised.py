"""Step I of cross-modal distillation: one network trained on one modality.

Hafner et al. (CVIU 2022), Sec. 3.2 step I and Sec. 4.1: a ResNet with an
embedding layer is trained on a single modality with either the softmax loss
(Eq. 6, cross-entropy over the training identities; SGD with Nesterov momentum)
or the batch-hard triplet loss (Eq. 5, margin 0.5, P=16 x K=4 batches; Adam),
and early-stopped on validation mAP. The same module gives the single-modal
baselines of Tables 1-2.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reidstream.training.losses import batch_hard_triplet, softmax_loss
from reidstream.training.models import ReIDNet

from ._common import EmbeddingHead, embedder_spec


class SupervisedMethod(nn.Module):
    """One network, one modality, softmax or batch-hard triplet loss.

    Args:
        net: The network F; needs a classifier (``num_classes > 0``) for ``loss="softmax"``.
        modality: Modality of the images it is trained on.
        loss: ``"softmax"`` (Eq. 6) or ``"triplet"`` (Eq. 5).
        margin: Triplet margin m of Eq. 5.
    """

    monitor = "val/mAP"
    monitor_mode = "max"
    sampler = "pk"

    def __init__(self, net: ReIDNet, modality: str, *, loss: str = "softmax", margin: float = 0.5) -> None:
        super().__init__()
        if loss not in ("softmax", "triplet"):
            raise ValueError(f"loss: expected 'softmax' or 'triplet', got {loss!r}")
        if loss == "softmax" and net.classifier is None:
            raise ValueError("loss='softmax' needs a network with a classifier (num_classes > 0)")
        self.net = net
        self.modality = modality
        self.loss_name = loss
        self.margin = float(margin)
        self.sampler = "pk" if loss == "triplet" else "shuffle"

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities a training batch must carry."""
        return (self.modality,)

    @property
    def input_channels(self) -> int:
        """Channels of the preprocessed input images."""
        return 3

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Loss of one batch: ``{"loss", "acc"}`` (softmax) or ``{"loss", "active"}`` (triplet)."""
        out = self.net(batch[self.modality])
        labels = batch["label"]
        if self.loss_name == "softmax":
            logits = out["logits"]
            acc = (logits.argmax(1) == labels).float().mean().detach()
            return {"loss": softmax_loss(logits, labels), "acc": acc}
        return {"loss": batch_hard_triplet(out["embedding"], labels, margin=self.margin)}

    def embedders(self) -> dict[str, nn.Module]:
        """Modality -> module mapping a preprocessed image batch to embeddings."""
        return {self.modality: EmbeddingHead(self.net)}

    def embedder_specs(self) -> dict[str, dict[str, Any]]:
        """Modality -> self-contained description of its embedding network (for checkpoints)."""
        return {self.modality: embedder_spec("reidnet", self.net)}
