"""ResNet backbones (He et al., 2016) with torchvision's module names and state-dict layout.

The networks here are written from scratch (no torchvision import) but name
every sub-module exactly as ``torchvision.models.resnet`` does (``conv1``,
``bn1``, ``relu``, ``maxpool``, ``layer1`` .. ``layer4``; blocks with ``conv1``,
``bn1``, ``conv2``, ``bn2``, ``conv3``, ``bn3`` and ``downsample.0/.1``), so that
ImageNet checkpoints load key for key (see :mod:`.weights`). The classification
head (``avgpool``, ``fc``) is left out: re-identification models put their own
pooling and embedding on top of the ``layer4`` map.

Two knobs go beyond torchvision: ``width`` scales every channel count (64 is
the standard network, 16 a tiny one for CPU tests) and ``last_stride`` sets the
stride of ``layer4`` (1 doubles the resolution of the final map, a common
re-identification trick).
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn


def _conv3x3(inplanes: int, planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(inplanes: int, planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or projected) shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 - 3x3 - 1x1 bottleneck, stride on the 3x3 convolution (ResNet-50/101, torchvision V1.5)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


ARCHS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
}


def check_backbone_args(width: int, in_channels: int, last_stride: int, stages: Sequence[str] | None
                        ) -> tuple[str, ...]:
    """Validates the arguments every backbone shares; returns the stages to build (default: all)."""
    for name, value in (("width", width), ("in_channels", in_channels)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride: expected 1 or 2, got {last_stride!r}")
    all_stages = ResNet.STAGES
    stages = tuple(all_stages if stages is None else stages)
    first = all_stages.index(stages[0]) if stages and stages[0] in all_stages else -1
    if not stages or first < 0 or stages != all_stages[first:first + len(stages)]:
        raise ValueError(f"stages: expected a non-empty contiguous run of {all_stages}, got {stages!r}")
    return stages


class ResNet(nn.Module):
    """ResNet feature extractor without ``avgpool``/``fc``; ``forward`` returns the ``layer4`` map.

    Args:
        arch: One of ``resnet18``, ``resnet34``, ``resnet50``, ``resnet101``.
        width: Channels of the stem; every stage scales with it (64 = standard).
        in_channels: Channels of the input image (3 for RGB or homogenised depth).
        last_stride: Stride of ``layer4`` (1 or 2).
        stages: Contiguous run of :attr:`STAGES` to build (default: all). Partial
            backbones are the per-modality and shared parts of two-stream networks;
            their keys are still torchvision's (a subset of them).

    Attributes:
        arch: The architecture name.
        stages: The stages this instance holds, in order.
        stage_channels: Output channels of every stage (also of stages not built).
        out_channels: Output channels of ``layer4``.
    """

    STAGES: tuple[str, ...] = ("stem", "layer1", "layer2", "layer3", "layer4")

    def __init__(self, arch: str = "resnet50", *, width: int = 64, in_channels: int = 3,
                 last_stride: int = 2, stages: Sequence[str] | None = None) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"arch: expected one of {sorted(ARCHS)}, got {arch!r}")
        stages = check_backbone_args(width, in_channels, last_stride, stages)

        block, layers = ARCHS[arch]
        self.arch = arch
        self.width = width
        self.in_channels = in_channels
        self.last_stride = last_stride
        self.stages = stages
        self.stage_channels: dict[str, int] = {"stem": width}
        for i in range(4):
            self.stage_channels[f"layer{i + 1}"] = width * 2 ** i * block.expansion
        self.out_channels = self.stage_channels["layer4"]

        if "stem" in stages:
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for i, blocks in enumerate(layers):
            name = f"layer{i + 1}"
            if name not in stages:
                continue
            inplanes = self.stage_channels[self.STAGES[i]]
            stride = 1 if i == 0 else (last_stride if i == 3 else 2)
            setattr(self, name, self._make_layer(block, inplanes, width * 2 ** i, blocks, stride))
        self._init_weights()

    @staticmethod
    def _make_layer(block: type[BasicBlock] | type[Bottleneck], inplanes: int, planes: int,
                    blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or inplanes != planes * block.expansion:
            downsample = nn.Sequential(_conv1x1(inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        modules = [block(inplanes, planes, stride, downsample)]
        modules += [block(planes * block.expansion, planes) for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stage_module(self, name: str) -> nn.Module:
        """The module(s) of stage ``name`` (``stem`` = conv1, bn1, relu, maxpool)."""
        if name not in self.stages:
            raise ValueError(f"name: expected one of this backbone's stages {self.stages}, got {name!r}")
        if name == "stem":
            return nn.ModuleList([self.conv1, self.bn1, self.relu, self.maxpool])
        return getattr(self, name)

    def forward_stage(self, name: str, x: Tensor) -> Tensor:
        """Runs one stage (``stem`` = conv1 + bn1 + relu + maxpool, or ``layer1`` .. ``layer4``).

        Args:
            name: A stage held by this backbone (see :attr:`stages`).
            x: Input of that stage, ``B x C x H x W``.

        Returns:
            The stage's output map.
        """
        if name not in self.stages:
            raise ValueError(f"name: expected one of this backbone's stages {self.stages}, got {name!r}")
        if name == "stem":
            return self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return getattr(self, name)(x)

    def forward(self, x: Tensor) -> Tensor:
        """Runs every stage held; for a full backbone returns the ``layer4`` map."""
        for name in self.stages:
            x = self.forward_stage(name, x)
        return x


def build_resnet(arch: str = "resnet50", *, width: int = 64, in_channels: int = 3,
                 last_stride: int = 2) -> ResNet:
    """Builds a full ResNet backbone (all of :attr:`ResNet.STAGES`), Kaiming-initialised.

    Args:
        arch: One of ``resnet18``, ``resnet34``, ``resnet50``, ``resnet101``.
        width: Stem channels; all stages scale with it (64 = standard, 16 = tiny).
        in_channels: Input image channels.
        last_stride: Stride of ``layer4`` (1 or 2).

    Returns:
        The backbone; its state dict has torchvision's keys minus ``fc.*``.
    """
    return ResNet(arch, width=width, in_channels=in_channels, last_stride=last_stride)


def backbone(arch: str = "resnet50", *, width: int = 64, in_channels: int = 3, last_stride: int = 2,
             stages: Sequence[str] | None = None) -> nn.Module:
    """A ResNet (``resnet18|34|50|101``) or mobile backbone (``mobilenetv2``, ``efficientnet_lite0``).

    Both kinds share the stage interface (:attr:`ResNet.STAGES`, ``forward_stage``,
    ``stage_module``, ``stage_channels``, ``out_channels``); see :mod:`.mobile`.
    """
    from .mobile import MOBILE_ARCHS, MobileBackbone

    if arch in MOBILE_ARCHS:
        return MobileBackbone(arch, width=width, in_channels=in_channels, last_stride=last_stride, stages=stages)
    if arch not in ARCHS:
        raise ValueError(f"arch: expected one of {sorted(ARCHS) + list(MOBILE_ARCHS)}, got {arch!r}")
    return ResNet(arch, width=width, in_channels=in_channels, last_stride=last_stride, stages=stages)
