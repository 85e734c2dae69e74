"""Paired augmentation of preprocessed crops (numpy + OpenCV, no torch).

:class:`Preprocess` itself lives in :mod:`reidstream.pipeline.preprocess` (the live
pipeline applies it too) and is re-exported here.
"""

from __future__ import annotations

from typing import Mapping

import cv2
import numpy as np

from reidstream.pipeline.preprocess import (  # noqa: F401 - re-exported
    IMAGENET_MEAN, IMAGENET_STD, MODALITY_NAMES, Preprocess,
    default_preprocess)


def hflip(image: np.ndarray) -> np.ndarray:
    """Horizontal flip of a ``C x H x W`` (or ``H x W``) array (a contiguous copy)."""
    return np.ascontiguousarray(image[..., ::-1])


def pad_crop(image: np.ndarray, top: int, left: int, pad_y: int, pad_x: int,
             fill: float | np.ndarray = 0.0) -> np.ndarray:
    """Pads a ``C x H x W`` array by ``pad_y``/``pad_x`` per side and crops ``H x W`` at ``(top, left)``.

    ``fill`` is the padding value: a scalar or one value per channel.
    """
    c, h, w = image.shape
    padded = np.empty((c, h + 2 * pad_y, w + 2 * pad_x), image.dtype)
    padded[...] = np.broadcast_to(np.asarray(fill, image.dtype).reshape(-1, 1, 1), (c, 1, 1))
    padded[:, pad_y:pad_y + h, pad_x:pad_x + w] = image
    return np.ascontiguousarray(padded[:, top:top + h, left:left + w])


def augment(images: Mapping[str, np.ndarray], rng: np.random.Generator, *, flip_p: float = 0.5,
            pad_fraction: float = 0.1, fill: Mapping[str, float | np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The same random flip and pad-and-crop applied to every modality of one capture.

    Works on preprocessed ``C x H x W`` arrays (all of the same ``H x W``). Draws
    from ``rng`` only (one flip draw, then the crop offsets), so a seeded
    generator gives reproducible augmentation.

    Args:
        images: Modality -> ``C x H x W`` float array of one capture.
        rng: Source of randomness.
        flip_p: Probability of the horizontal flip.
        pad_fraction: Padding per side as a fraction of height and width.
        fill: Modality -> padding value (scalar or per channel); default 0. Pass
            :attr:`Preprocess.zero_value` to pad with black / no depth, as
            open-reid pads the image before normalising.

    Returns:
        Modality -> augmented array (new arrays; the inputs are not changed).
    """
    if not images:
        return {}
    sizes = {k: v.shape[-2:] for k, v in images.items()}
    if len(set(sizes.values())) != 1 or any(v.ndim != 3 for v in images.values()):
        raise ValueError(f"augment: expected C x H x W arrays of one H x W, got shapes "
                         f"{ {k: v.shape for k, v in images.items()} }")
    h, w = next(iter(sizes.values()))
    pad_y, pad_x = int(round(h * pad_fraction)), int(round(w * pad_fraction))
    flip = bool(rng.random() < flip_p)
    top, left = int(rng.integers(0, 2 * pad_y + 1)), int(rng.integers(0, 2 * pad_x + 1))
    out = {}
    for k, v in images.items():
        v = hflip(v) if flip else v
        out[k] = pad_crop(v, top, left, pad_y, pad_x, 0.0 if fill is None else fill.get(k, 0.0))
    return out


def color_augment(rgb: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """Removes clothing colour as a shortcut: with probability ``p`` the colour channels of an
    ``H x W x 3`` image are randomly permuted, or (half of those times) replaced by grey.

    Cross-modal distillation transfers structure, not colour, from depth to RGB (Hafner et
    al., Sec. 5.7); on small training sets an RGB student otherwise memorises clothing
    colour per identity. Draws from ``rng`` only.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"color_augment: expected an H x W x 3 image, got shape {rgb.shape}")
    if rng.random() >= p:
        return rgb
    if rng.random() < 0.5:
        grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.ascontiguousarray(rgb[..., rng.permutation(3)])
