"""Random erasing on a batch tensor (Zhong et al., AAAI 2020), as used by Gao et al. (2022) Sec. 4.3."""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor


def _pair(value: tuple[float, float], name: str, upper: float | None) -> tuple[float, float]:
    ok = (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, Real) and not isinstance(v, bool) for v in value)
          and 0 < value[0] <= value[1] and (upper is None or value[1] <= upper))
    if not ok:
        bound = f" <= {upper}" if upper is not None else ""
        raise ValueError(f"{name}: expected (low, high) with 0 < low <= high{bound}, got {value!r}")
    return float(value[0]), float(value[1])


def random_erasing(images: Tensor, p: float = 0.5, *, generator: torch.Generator | None = None,
                   area: tuple[float, float] = (0.02, 0.4), aspect: tuple[float, float] = (0.3, 1 / 0.3),
                   value: float = 0.0, attempts: int = 100) -> Tensor:
    """Random erasing (Zhong et al., 2020, Alg. 1) of each image of a batch.

    Each image is erased with probability ``p``: up to ``attempts`` times, a target
    area ``S_e ~ U(area) * H * W`` and an aspect ratio ``r_e ~ U(aspect)`` give a
    rectangle ``h = round(sqrt(S_e * r_e))``, ``w = round(sqrt(S_e / r_e))``; the
    first one that fits (``h < H``, ``w < W``) is placed uniformly at random and
    filled with ``value``. Gao et al. (2022, Sec. 4.3) use ``p = 0.5`` with the
    standard ``area = (0.02, 0.4)`` and ``aspect = (0.3, 1/0.3)``; the fill is the
    per-channel mean, which is 0 on mean/std-normalised images.

    Args:
        images: ``B x C x H x W`` float images (not modified).
        p: Erasing probability per image, in ``[0, 1]``.
        generator: Source of randomness (a CPU ``torch.Generator``), for repeatable runs.
        area: ``(s_l, s_h)`` range of the erased fraction of the image, within ``(0, 1]``.
        aspect: ``(r_1, r_2)`` range of the rectangle's height / width ratio.
        value: Fill value.
        attempts: Rectangles tried per erased image before giving up.

    Returns:
        A new ``B x C x H x W`` tensor.
    """
    if not torch.is_tensor(images) or images.ndim != 4 or not images.dtype.is_floating_point:
        raise ValueError(f"images: expected a B x C x H x W float tensor, got "
                         f"{(tuple(images.shape), images.dtype) if torch.is_tensor(images) else type(images).__name__}")
    if not isinstance(p, Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p: expected a probability in [0, 1], got {p!r}")
    s_l, s_h = _pair(area, "area", 1.0)
    r_1, r_2 = _pair(aspect, "aspect", None)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        raise ValueError(f"attempts: expected an int >= 1, got {attempts!r}")
    if not isinstance(value, Real) or isinstance(value, bool):
        raise ValueError(f"value: expected a number, got {value!r}")

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=generator))

    def randint(n: int) -> int:  # uniform in [0, n]
        return int(torch.randint(0, n + 1, (), generator=generator))

    out = images.clone()
    _, _, height, width = images.shape
    for b in range(images.shape[0]):
        if float(torch.rand((), generator=generator)) >= p:
            continue
        for _ in range(attempts):
            target = uniform(s_l, s_h) * height * width
            ratio = uniform(r_1, r_2)
            h, w = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
            if 0 < h < height and 0 < w < width:
                top, left = randint(height - h), randint(width - w)
                out[b, :, top:top + h, left:left + w] = value
                break
    return out
