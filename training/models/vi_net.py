"""Visible-infrared network shared by the VI methods (AGW, LUPI, EAT + CMKD, dual-alignment).

One ResNet split in two at ``split_stage``: every branch (modality, or LUPI's
intermediate grayscale stream) has its own copy of the stages up to and
including ``split_stage``; the later stages are shared, so all branches land
in one embedding space. On top of the shared stages:

* ``parts == 0``: the AGW head of Ye et al. (TPAMI 2021), used by Alehdaghi et
  al. (seed 004, Sec. 4.2: "AGW baseline") and Gao et al. (seed 002, Sec. 3.1):
  non-local attention blocks in ``layer2`` / ``layer3``, generalised-mean (GeM)
  pooling, a BN neck (BatchNorm1d, bias frozen) and a bias-free classifier.
* ``parts == K``: the part head of Hao et al. (seed 003, Sec. 3.1, Fig. 4, and
  Sec. 4.2): ``layer4`` cut into K horizontal stripes, each average-pooled, a
  1x1 convolution to ``part_dim`` followed by BatchNorm per part (the features
  after BatchNorm are the embedding, "different with PCB"), and K separate
  bias-free linear classifiers.

``embedding`` (the test-time descriptor) is the L2-normalised ``feature``, so
Euclidean ranking equals cosine ranking.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .net import config_kwargs
from .resnet import ResNet, backbone

# AGW (Ye et al.) puts 2 non-local blocks after the last blocks of layer2 and 3 after those of layer3.
NON_LOCAL_BLOCKS = {"layer2": 2, "layer3": 3}


class NonLocal(nn.Module):
    """Dot-product non-local block (Wang et al. 2018) as used by AGW: ``z = W(softmax-free attention(x)) + x``.

    ``W`` ends in a BatchNorm initialised to zero, so a fresh block is the identity.

    Args:
        channels: Input (and output) channels.
        reduction: Inner channels are ``channels // reduction``.
    """

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        inner = max(1, channels // reduction)
        self.g = nn.Conv2d(channels, inner, 1)
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.W = nn.Sequential(nn.Conv2d(inner, channels, 1), nn.BatchNorm2d(channels))
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        g = self.g(x).flatten(2).transpose(1, 2)           # B x N x C'
        theta = self.theta(x).flatten(2).transpose(1, 2)   # B x N x C'
        phi = self.phi(x).flatten(2)                        # B x C' x N
        attn = theta @ phi / (h * w)                        # B x N x N, normalised by N
        y = (attn @ g).transpose(1, 2).reshape(b, -1, h, w)
        return self.W(y) + x


def gem(x: Tensor, p: float = 3.0, eps: float = 1e-6) -> Tensor:
    """Generalised-mean pooling ``(mean x^p)^(1/p)`` over the spatial axes: ``B x C x H x W`` -> ``B x C``.

    Computed as ``m * (mean (x/m)^p)^(1/p)`` with ``m`` the per-channel maximum, which is
    the same value but cannot overflow float32 (early in training, eval-mode activations
    of the non-local stages can reach 1e17, whose cube is inf).
    """
    x = x.clamp(min=eps)
    m = x.detach().amax(dim=(2, 3), keepdim=True)
    return (x / m).pow(p).mean(dim=(2, 3)).pow(1.0 / p) * m.flatten(1)


class _Branch(nn.Module):
    """One branch's inference path: its own low stages, the shared stages and the head."""

    def __init__(self, net: "VINet", name: str) -> None:
        super().__init__()
        self.net = net
        self.name = name

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x, self.name)["embedding"]


class VINet(nn.Module):
    """Per-branch low stages, shared high stages, AGW or part head.

    Args:
        arch: Backbone, ``resnet18|34|50|101`` (the papers: ResNet-50).
        branches: Names of the branch-specific streams (e.g. ``("rgb", "ir")``, or
            ``("rgb", "ir", "gray")`` for LUPI's intermediate stream).
        split_stage: Last stage each branch has its own copy of: ``stem`` (AGW / LUPI
            "first block") or ``layer1`` (Gao et al. "stage 0-1").
        non_local: Insert AGW's non-local blocks in the shared ``layer2`` and ``layer3``.
        pool: ``gem`` or ``avg`` global pooling (global head only).
        gem_p: Exponent of GeM pooling.
        parts: 0 for the global AGW head; K > 0 for K horizontal part stripes.
        part_dim: Size of each part feature after the 1x1 convolution.
        num_classes: Training identities (0: no classifier).
        width: Backbone width (64 = standard).
        last_stride: Stride of ``layer4`` (1 in AGW and PCB).
    """

    def __init__(self, arch: str = "resnet50", *, branches: Sequence[str] = ("rgb", "ir"),
                 split_stage: str = "stem", non_local: bool = True, pool: str = "gem", gem_p: float = 3.0,
                 parts: int = 0, part_dim: int = 256, num_classes: int = 0, width: int = 64,
                 last_stride: int = 1) -> None:
        super().__init__()
        if isinstance(branches, str) or len(branches) < 1 or len(set(branches)) != len(branches) \
                or not all(isinstance(b, str) and b and "." not in b and b != "shared" for b in branches):
            raise ValueError(f"branches: expected distinct names without '.', other than 'shared', got {branches!r}")
        if split_stage not in ResNet.STAGES[:-1]:
            raise ValueError(f"split_stage: expected one of {ResNet.STAGES[:-1]}, got {split_stage!r}")
        if non_local and split_stage not in ("stem", "layer1"):
            raise ValueError(f"non_local: the non-local blocks sit in the shared layer2/layer3, so split_stage "
                             f"must be 'stem' or 'layer1', got {split_stage!r}")
        if pool not in ("gem", "avg"):
            raise ValueError(f"pool: expected 'gem' or 'avg', got {pool!r}")
        for name, v, lo in (("parts", parts, 0), ("part_dim", part_dim, 1), ("num_classes", num_classes, 0)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{name}: expected an int >= {lo}, got {v!r}")
        if not gem_p > 0:
            raise ValueError(f"gem_p: expected > 0, got {gem_p!r}")
        self._config = {"arch": arch, "branches": list(branches), "split_stage": split_stage,
                        "non_local": bool(non_local), "pool": pool, "gem_p": float(gem_p), "parts": parts,
                        "part_dim": part_dim, "num_classes": num_classes, "width": width,
                        "last_stride": last_stride}
        self.branches = tuple(branches)
        self.split_stage, self.pool_name, self.gem_p, self.parts = split_stage, pool, float(gem_p), parts
        cut = ResNet.STAGES.index(split_stage) + 1
        kw = {"width": width, "in_channels": 3, "last_stride": last_stride}
        self.streams = nn.ModuleDict({b: backbone(arch, stages=ResNet.STAGES[:cut], **kw) for b in branches})
        self.shared = backbone(arch, stages=ResNet.STAGES[cut:], **kw)
        self.low_channels = self.shared.stage_channels[split_stage]
        self.out_channels = c4 = self.shared.out_channels
        self.non_local = nn.ModuleDict()
        if non_local:
            for stage, n in NON_LOCAL_BLOCKS.items():
                n = min(n, len(getattr(self.shared, stage)))
                self.non_local[stage] = nn.ModuleList(NonLocal(self.shared.stage_channels[stage]) for _ in range(n))
        if parts == 0:
            self.bottleneck = nn.BatchNorm1d(c4)
            self.bottleneck.bias.requires_grad_(False)  # BN neck: no shift before the classifier
            self.classifier = nn.Linear(c4, num_classes, bias=False) if num_classes else None
        else:
            self.part_reduce = nn.ModuleList(
                nn.Sequential(nn.Conv2d(c4, part_dim, 1, bias=False), nn.BatchNorm2d(part_dim)) for _ in range(parts))
            self.part_classifiers = nn.ModuleList(
                nn.Linear(part_dim, num_classes, bias=False) for _ in range(parts)) if num_classes else None
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.001)

    def _check(self, branch: str) -> str:
        if branch not in self.streams:
            raise ValueError(f"branch: expected one of {self.branches}, got {branch!r}")
        return branch

    def forward_shared(self, x: Tensor) -> Tensor:
        """Runs the shared stages (with their non-local blocks) on the output of a branch's stream."""
        for stage in self.shared.stages:
            if stage not in self.non_local:
                x = self.shared.forward_stage(stage, x)
                continue
            layer, blocks = getattr(self.shared, stage), self.non_local[stage]
            first = len(layer) - len(blocks)
            for i, block in enumerate(layer):
                x = block(x)
                if i >= first:
                    x = blocks[i - first](x)
        return x

    def forward(self, x: Tensor, branch: str) -> dict[str, Tensor]:
        """Runs images of one branch.

        Args:
            x: ``B x 3 x H x W`` images.
            branch: Which branch-specific stream to use.

        Returns:
            ``low`` (end of the branch-specific stages), ``feature_map`` (``layer4``),
            ``feature`` and ``embedding``; global head: ``pooled`` and ``logits``; part
            head: ``part_pooled`` (B x K x C4), ``parts`` (B x K x part_dim) and
            ``part_logits`` (B x K x classes). Logits only with a classifier.
        """
        return self.forward_joint([(branch, x)])[0]

    def forward_joint(self, inputs: Sequence[tuple[str, Tensor]]) -> list[dict[str, Tensor]]:
        """Runs several branches, with the shared stages and head on the concatenated batch.

        Each ``(branch, images)`` pair goes through its own stream; the results pass
        the shared stages and the head once and are split back. In eval mode this
        equals :meth:`forward` per pair; in training mode BatchNorm sees the whole
        multi-modal batch, as AGW and LUPI train.

        Args:
            inputs: ``(branch name, B_i x 3 x H x W images)`` pairs, all of one image size.

        Returns:
            One dict per pair, with the keys of :meth:`forward`.
        """
        if not inputs:
            raise ValueError("inputs: expected at least one (branch, images) pair")
        lows, sizes = [], []
        for branch, x in inputs:
            if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != 3:
                raise ValueError(f"x[{branch!r}]: expected B x 3 x H x W images, got "
                                 f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
            lows.append(self.streams[self._check(branch)](x))
            sizes.append(x.shape[0])
        if len({t.shape[1:] for t in lows}) != 1:
            raise ValueError(f"inputs: expected images of one size, got {[tuple(x.shape[2:]) for _, x in inputs]}")
        full = self._head(self.forward_shared(torch.cat(lows) if len(lows) > 1 else lows[0]))
        split = {k: v.split(sizes) for k, v in full.items()}
        return [{"low": low, **{k: v[i] for k, v in split.items()}} for i, low in enumerate(lows)]

    def _head(self, fmap: Tensor) -> dict[str, Tensor]:
        out = {"feature_map": fmap}
        if self.parts == 0:
            pooled = gem(fmap, self.gem_p) if self.pool_name == "gem" else fmap.mean(dim=(2, 3))
            feature = self.bottleneck(pooled)
            out.update(pooled=pooled, feature=feature)
            if self.classifier is not None:
                out["logits"] = self.classifier(feature)
        else:
            if fmap.shape[2] < self.parts:
                raise ValueError(f"x: the layer4 map has {fmap.shape[2]} rows, fewer than parts={self.parts}; "
                                 f"use taller images")
            stripes = F.adaptive_avg_pool2d(fmap, (self.parts, 1))                 # B x C4 x K x 1
            parts = torch.stack([red(stripes[:, :, k:k + 1]).flatten(1) for k, red in enumerate(self.part_reduce)], 1)
            out.update(part_pooled=stripes.flatten(2).transpose(1, 2), parts=parts, feature=parts.flatten(1))
            if self.part_classifiers is not None:
                out["part_logits"] = torch.stack([c(parts[:, k]) for k, c in enumerate(self.part_classifiers)], 1)
        out["embedding"] = F.normalize(out["feature"], dim=1)
        return out

    def branch(self, name: str) -> nn.Module:
        """A module whose ``forward(x)`` returns branch ``name``'s embedding (that branch's stream only)."""
        return _Branch(self, self._check(name))

    def backbones(self) -> dict[str, ResNet]:
        """The partial backbones (each branch's stream and ``"shared"``), e.g. for ImageNet loading."""
        return {**dict(self.streams.items()), "shared": self.shared}

    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-able); :meth:`from_config` rebuilds the network."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self._config.items()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "VINet":
        """Builds a network from :meth:`config`'s output; unknown keys raise ValueError."""
        kwargs = config_kwargs(cls, config)
        if "branches" in kwargs and not isinstance(kwargs["branches"], str):
            kwargs["branches"] = tuple(kwargs["branches"])
        return cls(**kwargs)
