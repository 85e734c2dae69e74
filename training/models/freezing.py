"""Freezing parts of a network for step II of cross-modal distillation (Hafner et al., CVIU 2022, Sec. 3.2).

Step II copies the step-I network F into G and freezes "the weights of the
mid-level convolutional layer up to the final feature embedding". Two details
come from the authors' released code rather than the text:

* **Where the cut is.** The code freezes the parameters from
  ``layer3.0.conv3`` on, in parameter (registration) order: inside block 0 of
  ``layer3`` the ``conv1``/``bn1``/``conv2``/``bn2`` layers still learn, while
  ``conv3``, ``bn3``, the ``downsample`` projection, the remaining blocks of
  ``layer3``, ``layer4`` and the embedding are frozen. :func:`cut_paths` turns
  such a module path into the list of modules to freeze; it works on any
  backbone whose stages are modules (``named_modules`` relative to the backbone).
* **BatchNorm statistics.** The code calls ``model.train()`` on G, so the
  BatchNorm layers of the frozen part keep their affine weights but normalise
  with batch statistics and update their running statistics towards the new
  modality (``bn="adapt"``). ``bn="fixed"`` instead keeps frozen BatchNorm
  layers in eval mode, so every frozen parameter *and buffer* stays
  bit-identical.
"""

from __future__ import annotations

from typing import Mapping

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

FROZEN_BN: tuple[str, ...] = ("fixed", "adapt")
"""Behaviours of frozen BatchNorm layers: ``fixed`` (eval mode, buffers unchanged) or ``adapt`` (train mode)."""


def check_frozen_bn(bn: str) -> str:
    """Returns ``bn`` if it is one of :data:`FROZEN_BN`, else raises ValueError."""
    if bn not in FROZEN_BN:
        raise ValueError(f"frozen_bn: expected one of {FROZEN_BN}, got {bn!r}")
    return bn


def set_frozen(module: nn.Module, frozen: bool, bn: str = "fixed") -> None:
    """Sets ``requires_grad`` of all parameters of ``module``.

    Args:
        module: The module (all its sub-modules are affected).
        frozen: True freezes, False makes trainable again.
        bn: For ``frozen=True``: ``"fixed"`` puts its BatchNorm layers in eval mode
            (running statistics stay bit-identical); ``"adapt"`` leaves their mode
            alone, so in training they update running statistics (the original's
            ``model.train()``). Ignored when unfreezing.
    """
    check_frozen_bn(bn)
    for p in module.parameters():
        p.requires_grad_(not frozen)
    if frozen and bn == "fixed":
        for m in module.modules():
            if isinstance(m, _BatchNorm):
                m.eval()


def cut_paths(backbone: nn.Module, stages: Mapping[str, nn.Module], path: str) -> tuple[str, list[str]]:
    """The stage a module path lies in and the modules frozen by a cut at that path.

    The cut freezes the module at ``path`` and every module registered after it in
    the same stage (``named_modules`` order of the backbone, which is the parameter
    order the original code walks). For a torchvision-style ResNet-50,
    ``"layer3.0.conv3"`` gives ``("layer3", ["layer3.0.conv3", "layer3.0.bn3",
    "layer3.0.relu", "layer3.0.downsample", "layer3.0.downsample.0", ...,
    "layer3.1", ...])``.

    Args:
        backbone: The backbone whose ``named_modules`` the path is relative to.
        stages: Backbone stage name -> its module(s) (e.g. ``{"stem": ModuleList([...]),
            "layer1": ..., ...}``); used only to find which stage holds the path.
        path: Dotted module path relative to ``backbone``, e.g. ``"layer3.0.conv3"``.

    Returns:
        ``(stage name, backbone-relative paths to freeze, in registration order)``.

    Raises:
        ValueError: If ``path`` names no module of the backbone, or a module outside
            every stage.
    """
    named = dict(backbone.named_modules())
    if not isinstance(path, str) or not path or path not in named:
        near = [n for n in named if n and isinstance(path, str) and n.startswith(path.rsplit(".", 1)[0] + ".")]
        hint = f"; modules there: {near[:12]}" if near else ""
        raise ValueError(f"freeze cut {path!r}: no such module in the {type(backbone).__name__} backbone; expected "
                         f"a stage name {tuple(stages)} or a module path such as 'layer3.0.conv3'{hint}")
    owner = {}
    for name, module in stages.items():
        for m in module.modules():
            owner.setdefault(id(m), name)
    stage = owner.get(id(named[path]))
    if stage is None or named[path] is stages[stage]:
        raise ValueError(f"freeze cut {path!r}: expected a module inside one of the stages {tuple(stages)} "
                         f"(a whole stage is cut by its name)")
    in_stage = [n for n, m in backbone.named_modules() if n and owner.get(id(m)) == stage
                and m is not stages[stage]]
    return stage, in_stage[in_stage.index(path):]
