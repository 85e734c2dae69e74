"""Mobile backbones with the stage interface of :class:`~.resnet.ResNet`: MobileNetV2 and EfficientNet-Lite0.

Both are built from a maintained implementation (torchvision's ``mobilenet_v2`` and timm's
``tf_efficientnet_lite0``) and regrouped into the five stages every network of this package
expects (``stem``, ``layer1`` .. ``layer4``, output strides 4/4/8/16/32 up to ``layer1`` = 4),
so :class:`~.net.ReIDNet` and :class:`~.vi_net.VINet` (per-branch low stages, shared high
stages, non-local blocks in ``layer2``/``layer3``) use them unchanged:

============  =========================================  ==========================================
stage         MobileNetV2 (torchvision ``features``)      EfficientNet-Lite0 (timm)
============  =========================================  ==========================================
stem          ``features[0:2]`` (16 ch, /2)              ``conv_stem``, ``bn1``, ``blocks[0]`` (16, /2)
layer1        ``features[2:4]`` (24 ch, /4)              ``blocks[1]`` (24, /4)
layer2        ``features[4:7]`` (32 ch, /8)              ``blocks[2]`` (40, /8)
layer3        ``features[7:14]`` (96 ch, /16)            ``blocks[3:5]`` (112, /16)
layer4        ``features[14:19]`` (1280 ch, /32)         ``blocks[5:7]``, ``conv_head``, ``bn2`` (1280, /32)
============  =========================================  ==========================================

Every stage is an ``nn.Sequential`` of the source network's own blocks, so
:meth:`MobileBackbone.key_map` can translate the source's state-dict keys (which ImageNet
checkpoints use) into this module's keys, for full and partial backbones alike.
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from .resnet import check_backbone_args

STAGES: tuple[str, ...] = ("stem", "layer1", "layer2", "layer3", "layer4")
MOBILE_ARCHS: tuple[str, ...] = ("mobilenetv2", "efficientnet_lite0")


def _source_model(arch: str, width: int) -> nn.Module:
    if arch == "mobilenetv2":
        from torchvision.models import mobilenet_v2

        return mobilenet_v2(weights=None, width_mult=width / 64)
    if width != 64:
        raise ValueError(f"width: efficientnet_lite0 exists only at width 64, got {width}")
    import timm

    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


def _stage_lists(arch: str, src: nn.Module) -> dict[str, list[nn.Module]]:
    if arch == "mobilenetv2":
        f = list(src.features)
        return {"stem": f[0:2], "layer1": f[2:4], "layer2": f[4:7], "layer3": f[7:14], "layer4": f[14:19]}
    b = list(src.blocks)
    return {"stem": [src.conv_stem, src.bn1, *b[0]], "layer1": list(b[1]), "layer2": list(b[2]),
            "layer3": [*b[3], *b[4]], "layer4": [*b[5], *b[6], src.conv_head, src.bn2]}


def _first_strided_depthwise(stage: nn.Sequential) -> nn.Conv2d:
    for m in stage.modules():
        if isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels and m.stride != (1, 1):
            return m
    raise AssertionError("no strided depthwise convolution in layer4")


class MobileBackbone(nn.Module):
    """MobileNetV2 or EfficientNet-Lite0 feature extractor regrouped into :data:`STAGES`.

    Args:
        arch: ``mobilenetv2`` or ``efficientnet_lite0``.
        width: 64 is the standard network; MobileNetV2 also takes other widths (width
            multiplier ``width / 64``, e.g. 16 for tiny test models).
        in_channels: Channels of the input image; the stem convolution is rebuilt for values other than 3.
        last_stride: Stride of ``layer4`` (1 keeps the /16 resolution, a common re-id tweak).
        stages: Contiguous run of :data:`STAGES` to build (default: all), as for ResNet.

    Attributes:
        arch, width, in_channels, last_stride, stages, stage_channels, out_channels: As for ResNet.
    """

    STAGES = STAGES

    def __init__(self, arch: str = "efficientnet_lite0", *, width: int = 64, in_channels: int = 3,
                 last_stride: int = 2, stages: Sequence[str] | None = None) -> None:
        super().__init__()
        if arch not in MOBILE_ARCHS:
            raise ValueError(f"arch: expected one of {MOBILE_ARCHS}, got {arch!r}")
        stages = check_backbone_args(width, in_channels, last_stride, stages)
        self.arch, self.width, self.in_channels, self.last_stride, self.stages = \
            arch, width, in_channels, last_stride, stages
        src = _source_model(arch, width)
        groups = _stage_lists(arch, src)
        self.stage_channels = {name: _out_channels(mods) for name, mods in groups.items()}
        self.out_channels = self.stage_channels["layer4"]
        src_names = {id(m): n for n, m in src.named_modules()}
        for name in stages:
            setattr(self, name, nn.Sequential(*groups[name]))
        self._key_map = {src_names[id(m)]: n for n, m in self.named_modules() if id(m) in src_names and n}
        if "stem" in stages and in_channels != 3:
            conv = self.stem[0][0] if arch == "mobilenetv2" else self.stem[0]
            new = type(conv)(in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                             padding=conv.padding, bias=conv.bias is not None)
            if arch == "mobilenetv2":
                self.stem[0][0] = new
            else:
                self.stem[0] = new
        if "layer4" in stages and last_stride == 1:
            _first_strided_depthwise(self.layer4).stride = (1, 1)

    def key_map(self) -> dict[str, str]:
        """Source-network module name (torchvision / timm layout) -> module name here, for modules held."""
        return dict(self._key_map)

    def stage_module(self, name: str) -> nn.Module:
        """The module of stage ``name`` (held by this backbone)."""
        if name not in self.stages:
            raise ValueError(f"name: expected one of this backbone's stages {self.stages}, got {name!r}")
        return getattr(self, name)

    def forward_stage(self, name: str, x: Tensor) -> Tensor:
        """Runs one stage held by this backbone."""
        return self.stage_module(name)(x)

    def forward(self, x: Tensor) -> Tensor:
        """Runs every stage held; for a full backbone returns the ``layer4`` map."""
        for name in self.stages:
            x = getattr(self, name)(x)
        return x


def _out_channels(modules: list[nn.Module]) -> int:
    for m in reversed(modules):
        for sub in reversed(list(m.modules())):
            if isinstance(sub, nn.BatchNorm2d):
                return sub.num_features
    raise AssertionError("stage without BatchNorm")
