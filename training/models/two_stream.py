"""Two-stream cross-modal network (Wu et al., 2017), the baseline of Hafner et al. (2022), Tables 3-4.

Each modality has its own copy of the early backbone stages (up to and
including ``split_stage``); the later stages, the embedding and the classifier
are shared, so both modalities land in one embedding space. The same layout
(modality-specific shallow layers, shared deep layers) is the usual baseline of
visible-infrared re-identification.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from torch import Tensor, nn

from .net import config_kwargs
from .resnet import ResNet, backbone


class _Branch(nn.Module):
    """One modality's path through a :class:`TwoStreamNet`; ``forward(x)`` returns the embedding."""

    def __init__(self, stream: ResNet, shared: ResNet | None, pool: nn.Module, embedding: nn.Module) -> None:
        super().__init__()
        self.stream = stream
        self.shared = shared
        self.pool = pool
        self.embedding = embedding

    def forward(self, x: Tensor) -> Tensor:
        h = self.stream(x)
        if self.shared is not None:
            h = self.shared(h)
        return self.embedding(self.pool(h).flatten(1))


class TwoStreamNet(nn.Module):
    """Modality-specific stems, shared deep stages, shared embedding (+ classifier).

    Args:
        arch: Backbone, ``resnet18|34|50|101``.
        modalities: Names of the streams (e.g. ``("rgb", "depth")`` or ``("rgb", "ir")``).
        split_stage: Last stage of :attr:`ResNet.STAGES` that each modality has its
            own copy of; the stages after it are shared.
        embedding_dim: Size of the shared ``Linear + BatchNorm1d`` embedding.
        num_classes: Identities of the shared classifier; 0 builds none.
        width: Backbone width (64 = standard).
        last_stride: Stride of ``layer4``.

    Attributes:
        streams: ``nn.ModuleDict`` modality -> partial :class:`ResNet` (stem .. split_stage).
        shared: Partial :class:`ResNet` of the stages after ``split_stage`` (None
            when ``split_stage == "layer4"``).
    """

    def __init__(self, arch: str = "resnet50", *, modalities: Sequence[str] = ("rgb", "depth"),
                 split_stage: str = "layer1", embedding_dim: int = 128, num_classes: int = 0,
                 width: int = 64, last_stride: int = 2) -> None:
        super().__init__()
        if isinstance(modalities, str) or not modalities or len(set(modalities)) != len(modalities) \
                or not all(isinstance(m, str) and m and "." not in m for m in modalities):
            raise ValueError(f"modalities: expected a non-empty sequence of distinct names without '.', "
                             f"got {modalities!r}")
        if split_stage not in ResNet.STAGES:
            raise ValueError(f"split_stage: expected one of {ResNet.STAGES}, got {split_stage!r}")
        if not isinstance(embedding_dim, int) or isinstance(embedding_dim, bool) or embedding_dim < 1:
            raise ValueError(f"embedding_dim: expected a positive int, got {embedding_dim!r}")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
            raise ValueError(f"num_classes: expected an int >= 0, got {num_classes!r}")
        self._config = {"arch": arch, "modalities": list(modalities), "split_stage": split_stage,
                        "embedding_dim": embedding_dim, "num_classes": num_classes, "width": width,
                        "last_stride": last_stride}
        self.modalities = tuple(modalities)
        self.split_stage = split_stage
        cut = ResNet.STAGES.index(split_stage) + 1
        kwargs = {"width": width, "in_channels": 3, "last_stride": last_stride}
        self.streams = nn.ModuleDict({m: backbone(arch, stages=ResNet.STAGES[:cut], **kwargs) for m in modalities})
        self.shared = backbone(arch, stages=ResNet.STAGES[cut:], **kwargs) if cut < len(ResNet.STAGES) else None
        out_channels = self.streams[self.modalities[0]].out_channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embedding = nn.Sequential(nn.Linear(out_channels, embedding_dim), nn.BatchNorm1d(embedding_dim))
        self.classifier = nn.Linear(embedding_dim, num_classes) if num_classes > 0 else None
        nn.init.kaiming_normal_(self.embedding[0].weight, mode="fan_out")
        nn.init.zeros_(self.embedding[0].bias)
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)
            nn.init.zeros_(self.classifier.bias)

    def _check_modality(self, modality: str) -> str:
        if modality not in self.streams:
            raise ValueError(f"modality: expected one of {self.modalities}, got {modality!r}")
        return modality

    def forward(self, x: Tensor, modality: str) -> dict[str, Tensor]:
        """Embeds images of one modality.

        Args:
            x: Images, ``B x 3 x H x W`` (single-channel modalities duplicated to 3).
            modality: Which stream to use.

        Returns:
            ``{"feature_map", "pooled", "embedding"}`` (+ ``"logits"`` with a
            classifier), as :meth:`ReIDNet.forward`.
        """
        h = self.streams[self._check_modality(modality)](x)
        if self.shared is not None:
            h = self.shared(h)
        pooled = self.pool(h).flatten(1)
        out = {"feature_map": h, "pooled": pooled, "embedding": self.embedding(pooled)}
        if self.classifier is not None:
            out["logits"] = self.classifier(out["embedding"])
        return out

    def branch(self, modality: str) -> nn.Module:
        """A module whose ``forward(x)`` returns ``modality``'s embedding, sharing this net's parameters."""
        return _Branch(self.streams[self._check_modality(modality)], self.shared, self.pool, self.embedding)

    def backbones(self) -> dict[str, ResNet]:
        """The partial backbones (``"<modality>"`` streams and ``"shared"``), e.g. for :func:`load_pretrained`."""
        parts: dict[str, ResNet] = dict(self.streams.items())
        if self.shared is not None:
            parts["shared"] = self.shared
        return parts

    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-able); :meth:`from_config` rebuilds the network."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self._config.items()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "TwoStreamNet":
        """Builds a network from :meth:`config`'s output; unknown keys raise ValueError."""
        kwargs = config_kwargs(cls, config)
        if "modalities" in kwargs and not isinstance(kwargs["modalities"], str):
            kwargs["modalities"] = tuple(kwargs["modalities"])
        return cls(**kwargs)
