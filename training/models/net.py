"""Single-modality re-identification network of Hafner et al. (2022), Sec. 3.2-3.3 and 4.1.

A ResNet backbone, global average pooling and a ``Linear + BatchNorm1d``
embedding (128-D in the paper), optionally followed by an identity classifier
(softmax loss, Eq. 6) and optionally gated at one stage by the attention of
Eq. (4). Cross-modal distillation (step II) copies a trained network and
freezes it "from the mid-level convolutional layer up to the final feature
embedding" (:meth:`ReIDNet.freeze_from`; the authors' code cuts at
``layer3.0.conv3`` and lets frozen BatchNorm statistics adapt, see
:mod:`.freezing`). The authors' embedding is ``ReLU(BN(Linear))`` (open-reid's
ResNet with ``num_features > 0``): ``embedding_relu=True``.
"""

from __future__ import annotations

import inspect
from typing import Any, Iterable, Mapping

from torch import Tensor, nn

from .attention import POOLS, GatedAttention
from .freezing import check_frozen_bn, cut_paths, set_frozen
from .resnet import ResNet, backbone


def config_kwargs(cls: type, config: Mapping[str, Any]) -> dict[str, Any]:
    """Checks ``config`` against ``cls.__init__``'s parameters; unknown keys raise ValueError."""
    if not isinstance(config, Mapping):
        raise TypeError(f"config: expected a mapping, got {type(config).__name__}")
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(f"config: unknown keys {unknown} for {cls.__name__}; expected some of {allowed}")
    return dict(config)


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
        embedding_relu: Append a ReLU to the embedding, ``ReLU(BN(Linear))`` as in the
            authors' code (open-reid). False (default) keeps ``BN(Linear)``, so older
            checkpoints and bundles (whose config lacks the key) build and embed as
            before; :meth:`config` records the key only when True.
    """

    STAGES: tuple[str, ...] = ResNet.STAGES + ("embedding", "classifier")

    def __init__(self, arch: str = "resnet50", *, embedding_dim: int = 128, num_classes: int = 0,
                 width: int = 64, in_channels: int = 3, last_stride: int = 2,
                 attention_stage: str | None = None, attention_pool: str = "mean",
                 dropout: float = 0.0, embedding_relu: bool = False) -> None:
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
        if not isinstance(embedding_relu, bool):
            raise ValueError(f"embedding_relu: expected true or false, got {embedding_relu!r}")
        self._config = {"arch": arch, "embedding_dim": embedding_dim, "num_classes": num_classes,
                        "width": width, "in_channels": in_channels, "last_stride": last_stride,
                        "attention_stage": attention_stage, "attention_pool": attention_pool,
                        "dropout": float(dropout)}
        if embedding_relu:  # absent when False: configs of networks without the ReLU stay as they were
            self._config["embedding_relu"] = True
        self.attention_stage = attention_stage
        self.backbone = backbone(arch, width=width, in_channels=in_channels, last_stride=last_stride)
        self.attention = GatedAttention(attention_pool) if attention_stage is not None else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.embedding = nn.Sequential(nn.Linear(self.backbone.out_channels, embedding_dim),
                                       nn.BatchNorm1d(embedding_dim), *([nn.ReLU()] if embedding_relu else []))
        self.classifier = nn.Linear(embedding_dim, num_classes) if num_classes > 0 else None
        self._frozen: list[str] = []
        self._frozen_parts: dict[str, list[str]] = {}  # stage -> backbone paths frozen inside it (a cut)
        self._frozen_bn = "fixed"
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
        modules: dict[str, nn.Module] = {name: self.backbone.stage_module(name) for name in ResNet.STAGES}
        modules["embedding"] = self.embedding
        modules["classifier"] = self.classifier if self.classifier is not None else nn.ModuleList()
        return modules

    @property
    def frozen_stages(self) -> tuple[str, ...]:
        """Wholly frozen stages, in :attr:`STAGES` order (a stage cut inside is in :attr:`frozen_parts`)."""
        return tuple(s for s in self.STAGES if s in self._frozen)

    @property
    def frozen_parts(self) -> tuple[str, ...]:
        """Backbone module paths frozen by a cut inside a stage (e.g. ``layer3.0.conv3``, ``layer3.0.bn3``, ...)."""
        return tuple(p for s in self.STAGES for p in self._frozen_parts.get(s, ()))

    @property
    def frozen_bn(self) -> str:
        """Behaviour of frozen BatchNorm layers: ``fixed`` or ``adapt`` (see :mod:`.freezing`)."""
        return self._frozen_bn

    def _set_frozen_bn(self, bn: str) -> None:
        check_frozen_bn(bn)
        if bn != self._frozen_bn and (self._frozen or self._frozen_parts):
            raise ValueError(f"bn: parts of this network are already frozen with bn={self._frozen_bn!r}; "
                             f"unfreeze them before freezing with bn={bn!r}")
        self._frozen_bn = bn

    def freeze(self, stages: Iterable[str], *, bn: str = "fixed") -> None:
        """Freezes ``stages``: no gradients for their parameters.

        Args:
            stages: Names from :attr:`STAGES`.
            bn: ``"fixed"``: their BatchNorm layers stay in eval mode, so frozen
                parameters and buffers (running statistics, ``num_batches_tracked``)
                stay bit-identical through training, also after :meth:`train`.
                ``"adapt"``: BatchNorm layers follow the network's mode, so in
                training they normalise with batch statistics and update their
                running statistics (the original's ``model.train()``); their affine
                weights stay frozen.
        """
        if isinstance(stages, str):
            stages = [stages]
        stages = [self._check_stage(s) for s in stages]
        self._set_frozen_bn(bn)
        modules = self.stage_modules()
        for s in stages:
            set_frozen(modules[s], True, bn)
            self._frozen_parts.pop(s, None)
            if s not in self._frozen:
                self._frozen.append(s)

    def freeze_from(self, start: str, upto: str = "embedding", *, bn: str = "fixed") -> None:
        """Freezes from ``start`` on, up to and including the stage ``upto``.

        Hafner et al. (2022), Sec. 3.2 step II: "the weights of the mid-level
        convolutional layer up to the final feature embedding in G are frozen".

        Args:
            start: A stage name (that whole stage and the later ones are frozen) or a
                module path inside a backbone stage, relative to the backbone, e.g.
                ``"layer3.0.conv3"``: that module and every module registered after it
                in its stage are frozen, then the later stages. ``"layer3.0.conv3"``
                is the authors' code's cut (ResNet-50: ``conv1``/``bn1``/``conv2``/``bn2``
                of ``layer3.0`` keep learning; see :mod:`.freezing`).
            upto: Last stage frozen (default: the embedding).
            bn: Frozen BatchNorm behaviour, ``"fixed"`` or ``"adapt"`` (see :meth:`freeze`).

        Raises:
            ValueError: Unknown stage, a path that names no module of a backbone stage
                (e.g. ``layer3.0.conv3`` in a ResNet-18, whose blocks end at ``conv2``),
                or ``upto`` before ``start``.
        """
        parts: list[str] = []
        if start in self.STAGES:
            stage = start
            first = self.STAGES.index(stage)
        else:
            stage, parts = cut_paths(self.backbone, {s: m for s, m in self.stage_modules().items()
                                                     if s in ResNet.STAGES}, start)
            first = self.STAGES.index(stage) + 1
        last = self.STAGES.index(self._check_stage(upto, "upto"))
        if last < self.STAGES.index(stage):
            raise ValueError(f"upto: expected a stage at or after {stage!r} in {self.STAGES}, got {upto!r}")
        if parts:
            self._set_frozen_bn(bn)
            named = dict(self.backbone.named_modules())
            for path in parts:
                set_frozen(named[path], True, bn)
            if stage not in self._frozen:
                self._frozen_parts[stage] = sorted(set(self._frozen_parts.get(stage, [])) | set(parts),
                                                   key=list(named).index)
        self.freeze(self.STAGES[first:last + 1], bn=bn)

    def unfreeze(self, stages: Iterable[str] | None = None) -> None:
        """Undoes :meth:`freeze` / :meth:`freeze_from` for ``stages`` (default: everything frozen)."""
        if stages is None:
            stages = [s for s in self.STAGES if s in self._frozen or s in self._frozen_parts]
        stages = [stages] if isinstance(stages, str) else list(stages)
        modules = self.stage_modules()
        for s in map(self._check_stage, stages):
            set_frozen(modules[s], False)
            modules[s].train(self.training)
            self._frozen_parts.pop(s, None)
            if s in self._frozen:
                self._frozen.remove(s)
        if not self._frozen and not self._frozen_parts:
            self._frozen_bn = "fixed"

    def train(self, mode: bool = True) -> "ReIDNet":
        """Sets the mode like :meth:`nn.Module.train`; with ``frozen_bn == "fixed"`` frozen BatchNorm stays in eval."""
        super().train(mode)
        if self._frozen_bn == "fixed":
            modules = self.stage_modules()
            named = dict(self.backbone.named_modules())
            for s in self._frozen:
                set_frozen(modules[s], True)
            for path in self.frozen_parts:
                set_frozen(named[path], True)
        return self

    # ------------------------------------------------------------------ config
    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-able); :meth:`from_config` rebuilds the network."""
        return dict(self._config)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "ReIDNet":
        """Builds a network from :meth:`config`'s output; unknown keys raise ValueError."""
        return cls(**config_kwargs(cls, config))
