"""Single-modality re-identification network of Hafner et al. (2022), Sec. 3.2-3.3 and 4.1.

A ResNet backbone, global average pooling and a ``Linear + BatchNorm1d``
embedding (128-D in the paper), optionally followed by an identity classifier
(softmax loss, Eq. 6) and optionally gated at one stage by the attention of
Eq. (4). Cross-modal distillation (step II) copies a trained network and
freezes it "from the mid-level convolutional layer up to the final feature
embedding" (:meth:`ReIDNet.freeze_from`).
"""

from __future__ import annotations

import inspect
from typing import Any, Iterable, Mapping

from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from .attention import POOLS, GatedAttention
from .resnet import ResNet, build_resnet


def config_kwargs(cls: type, config: Mapping[str, Any]) -> dict[str, Any]:
    """Checks ``config`` against ``cls.__init__``'s parameters; unknown keys raise ValueError."""
    if not isinstance(config, Mapping):
        raise TypeError(f"config: expected a mapping, got {type(config).__name__}")
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(f"config: unknown keys {unknown} for {cls.__name__}; expected some of {allowed}")
    return dict(config)


def set_frozen(module: nn.Module, frozen: bool) -> None:
    """Sets ``requires_grad`` of all parameters; frozen BatchNorm layers go to eval mode."""
    for p in module.parameters():
        p.requires_grad_(not frozen)
    if frozen:
        for m in module.modules():
            if isinstance(m, _BatchNorm):
                m.eval()


class ReIDNet(nn.Module):
    """ResNet + GAP + embedding (+ classifier), with optional cross-modal gated attention.

    Args:
        arch: Backbone, ``resnet18|34|50|101`` (the paper uses ResNet-50).
        embedding_dim: Size ``D`` of the embedding (128, 256 or 512 in the paper).
        num_classes: Identities of the classifier; 0 (default) builds none
            (triplet / distillation training).
        width: Backbone width (64 = standard; small values for tests).
        in_channels: Input channels (depth is homogenised to 3 in the paper).
        last_stride: Stride of ``layer4``.
        attention_stage: Backbone stage whose output is gated by Eq. (4), or None.
        attention_pool: Channel pooling of the attention, ``"mean"`` or ``"max"``.
        dropout: Dropout probability on the pooled features before the embedding.
    """

    STAGES: tuple[str, ...] = ResNet.STAGES + ("embedding", "classifier")

    def __init__(self, arch: str = "resnet50", *, embedding_dim: int = 128, num_classes: int = 0,
                 width: int = 64, in_channels: int = 3, last_stride: int = 2,
                 attention_stage: str | None = None, attention_pool: str = "mean",
                 dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(embedding_dim, int) or isinstance(embedding_dim, bool) or embedding_dim < 1:
            raise ValueError(f"embedding_dim: expected a positive int, got {embedding_dim!r}")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
            raise ValueError(f"num_classes: expected an int >= 0, got {num_classes!r}")
        if attention_stage is not None and attention_stage not in ResNet.STAGES:
            raise ValueError(f"attention_stage: expected None or one of {ResNet.STAGES}, got {attention_stage!r}")
        if attention_pool not in POOLS:
            raise ValueError(f"attention_pool: expected one of {POOLS}, got {attention_pool!r}")
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self._config = {"arch": arch, "embedding_dim": embedding_dim, "num_classes": num_classes,
                        "width": width, "in_channels": in_channels, "last_stride": last_stride,
                        "attention_stage": attention_stage, "attention_pool": attention_pool,
                        "dropout": float(dropout)}
        self.attention_stage = attention_stage
        self.backbone = build_resnet(arch, width=width, in_channels=in_channels, last_stride=last_stride)
        self.attention = GatedAttention(attention_pool) if attention_stage is not None else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.embedding = nn.Sequential(nn.Linear(self.backbone.out_channels, embedding_dim),
                                       nn.BatchNorm1d(embedding_dim))
        self.classifier = nn.Linear(embedding_dim, num_classes) if num_classes > 0 else None
        self._frozen: list[str] = []
        nn.init.kaiming_normal_(self.embedding[0].weight, mode="fan_out")
        nn.init.zeros_(self.embedding[0].bias)
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)
            nn.init.zeros_(self.classifier.bias)

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, gate: Tensor | None = None) -> dict[str, Tensor]:
        """Embeds a batch of images.

        Args:
            x: Images, ``B x in_channels x H x W``.
            gate: The other modality's feature map at :attr:`attention_stage`
                (training-time cross-modal gating, Eq. 4); None self-gates when
                attention is on.

        Returns:
            ``{"feature_map": layer4 map, "pooled": B x C, "embedding": B x D}``
            plus ``"logits": B x num_classes`` when a classifier exists.
        """
        if gate is not None and self.attention is None:
            raise ValueError("gate: this network has no attention (attention_stage=None); expected gate=None")
        h = x
        for name in ResNet.STAGES:
            h = self.backbone.forward_stage(name, h)
            if name == self.attention_stage:
                h = self.attention(h, gate)
        pooled = self.pool(h).flatten(1)
        out = {"feature_map": h, "pooled": pooled, "embedding": self.embedding(self.dropout(pooled))}
        if self.classifier is not None:
            out["logits"] = self.classifier(out["embedding"])
        return out

    def stage_features(self, x: Tensor, stage: str) -> Tensor:
        """Runs the backbone up to and including ``stage``, without gating.

        This is the gating signal a network of the other modality provides (Eq. 4).
        """
        if stage not in ResNet.STAGES:
            raise ValueError(f"stage: expected one of {ResNet.STAGES}, got {stage!r}")
        for name in ResNet.STAGES:
            x = self.backbone.forward_stage(name, x)
            if name == stage:
                return x
        raise AssertionError("unreachable")

    def embed(self, x: Tensor) -> Tensor:
        """Returns ``forward(x)["embedding"]`` computed in eval mode (self-gating); restores the mode."""
        was_training = self.training
        if was_training:
            self.eval()
        try:
            return self.forward(x)["embedding"]
        finally:
            if was_training:
                self.train()

    # ------------------------------------------------------------------ freezing
    def _check_stage(self, stage: str, arg: str = "stages") -> str:
        if stage not in self.STAGES:
            raise ValueError(f"{arg}: expected stage names from {self.STAGES}, got {stage!r}")
        return stage

    def stage_modules(self) -> dict[str, nn.Module]:
        """Maps every name of :attr:`STAGES` to its module(s) (an empty ModuleList for a missing classifier)."""
        b = self.backbone
        modules: dict[str, nn.Module] = {"stem": nn.ModuleList([b.conv1, b.bn1, b.relu, b.maxpool])}
        modules.update({name: getattr(b, name) for name in ResNet.STAGES[1:]})
        modules["embedding"] = self.embedding
        modules["classifier"] = self.classifier if self.classifier is not None else nn.ModuleList()
        return modules

    @property
    def frozen_stages(self) -> tuple[str, ...]:
        """Frozen stages, in :attr:`STAGES` order."""
        return tuple(s for s in self.STAGES if s in self._frozen)

    def freeze(self, stages: Iterable[str]) -> None:
        """Freezes ``stages``: no gradients, and their BatchNorm layers stay in eval mode.

        Frozen parameters and buffers (running statistics, ``num_batches_tracked``)
        stay bit-identical through training, also after :meth:`train`.
        """
        if isinstance(stages, str):
            stages = [stages]
        stages = [self._check_stage(s) for s in stages]
        modules = self.stage_modules()
        for s in stages:
            set_frozen(modules[s], True)
            if s not in self._frozen:
                self._frozen.append(s)

    def freeze_from(self, stage: str, upto: str = "embedding") -> None:
        """Freezes ``stage`` and every later stage up to and including ``upto``.

        Hafner et al. (2022) step II: "the weights of the mid-level convolutional
        layer up to the final feature embedding in G are frozen".
        """
        first = self.STAGES.index(self._check_stage(stage, "stage"))
        last = self.STAGES.index(self._check_stage(upto, "upto"))
        if last < first:
            raise ValueError(f"upto: expected a stage at or after {stage!r} in {self.STAGES}, got {upto!r}")
        self.freeze(self.STAGES[first:last + 1])

    def unfreeze(self, stages: Iterable[str] | None = None) -> None:
        """Undoes :meth:`freeze` for ``stages`` (default: all frozen stages)."""
        stages = list(self._frozen) if stages is None else ([stages] if isinstance(stages, str) else list(stages))
        modules = self.stage_modules()
        for s in map(self._check_stage, stages):
            set_frozen(modules[s], False)
            modules[s].train(self.training)
            if s in self._frozen:
                self._frozen.remove(s)

    def train(self, mode: bool = True) -> "ReIDNet":
        """Sets the mode like :meth:`nn.Module.train`, keeping frozen stages' BatchNorm in eval mode."""
        super().train(mode)
        modules = self.stage_modules()
        for s in self._frozen:
            set_frozen(modules[s], True)
        return self

    # ------------------------------------------------------------------ config
    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-able); :meth:`from_config` rebuilds the network."""
        return dict(self._config)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "ReIDNet":
        """Builds a network from :meth:`config`'s output; unknown keys raise ValueError."""
        return cls(**config_kwargs(cls, config))
