"""Network input preprocessing of one crop (numpy + OpenCV, no torch).

:class:`Preprocess` turns one decoded crop into a normalised ``float32``
``C x H x W`` array. Its fields are JSON-able (:meth:`Preprocess.to_dict`) so
training checkpoints, model bundles and the live pipeline all apply the exact
preprocessing a model was trained with.

Depth follows Hafner et al. (CVIU 2022, Sec. 3.2): one channel duplicated into
three identical ones so ImageNet-pretrained backbones take it. Unlike their
8-bit renderings, we scale metric depth over a fixed range so values mean the
same at every camera: ``v = clip((depth_max_m - d) / (depth_max_m - depth_min_m), 0, 1)``
(near is bright), and pixels without depth (0, non-finite, beyond
``depth_max_m``) are 0 before normalisation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Mapping

import cv2
import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MODALITY_NAMES = ("rgb", "depth", "ir", "thermal")
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class Preprocess:
    """Resize + scale + normalise one modality's crop into a ``channels x height x width`` float32 array.

    Attributes:
        modality: ``"rgb"``, ``"depth"``, ``"ir"`` or ``"thermal"``.
        height: Output height in pixels.
        width: Output width in pixels.
        mean: Per-channel mean subtracted after scaling to [0, 1] (ImageNet's);
            with ``channels == 1`` the average of the three is used.
        std: Per-channel standard deviation divided by (likewise averaged).
        depth_min_m: Depth (m) mapped to 1.0 (nearer is clipped to 1.0).
        depth_max_m: Depth (m) mapped to 0.0; farther counts as no depth.
        channels: 3 (replicate single-channel modalities) or 1 (luminance for rgb).
        depth_window_m: ``None`` maps the metric range above (absolute depth). A number maps a
            window of that many metres centred on the person instead (the median valid depth of
            the crop's central region -> 0.5, nearer brighter, pixels behind the window -> 0):
            body relief becomes visible and the camera distance no longer changes the input.
    """

    modality: str
    height: int = 256
    width: int = 128
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    depth_min_m: float = 0.5
    depth_max_m: float = 8.0
    channels: int = 3
    depth_window_m: float | None = None

    def __post_init__(self) -> None:
        m = getattr(self.modality, "value", self.modality)
        if m not in MODALITY_NAMES:
            raise ValueError(f"Preprocess.modality: expected one of {list(MODALITY_NAMES)}, got {self.modality!r}")
        object.__setattr__(self, "modality", str(m))
        for name in ("height", "width"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= 4096:
                raise ValueError(f"Preprocess.{name}: expected an integer in 1..4096, got {v!r}")
            object.__setattr__(self, name, int(v))
        for name in ("mean", "std"):
            v = getattr(self, name)
            try:
                t = tuple(float(x) for x in v)
            except (TypeError, ValueError):
                t = ()
            if len(t) != 3 or not all(math.isfinite(x) for x in t) or (name == "std" and min(t) <= 0):
                raise ValueError(f"Preprocess.{name}: expected 3 finite numbers{' > 0' if name == 'std' else ''}, "
                                 f"got {v!r}")
            object.__setattr__(self, name, t)
        for name in ("depth_min_m", "depth_max_m"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not (
                    math.isfinite(v) and v >= 0):
                raise ValueError(f"Preprocess.{name}: expected a finite number of metres >= 0, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.depth_max_m <= self.depth_min_m:
            raise ValueError(f"Preprocess.depth_max_m: expected more than depth_min_m ({self.depth_min_m}), "
                             f"got {self.depth_max_m}")
        w = self.depth_window_m
        if w is not None:
            if isinstance(w, bool) or not isinstance(w, (int, float, np.floating, np.integer)) or not (
                    math.isfinite(w) and w > 0):
                raise ValueError(f"Preprocess.depth_window_m: expected None or a number of metres > 0, got {w!r}")
            object.__setattr__(self, "depth_window_m", float(w))
        if self.channels not in (1, 3) or isinstance(self.channels, bool):
            raise ValueError(f"Preprocess.channels: expected 1 or 3, got {self.channels!r}")

    def to_dict(self) -> dict:
        """JSON-able fields (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Preprocess:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        if not isinstance(d, Mapping):
            raise ValueError(f"Preprocess.from_dict: expected a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"Preprocess.from_dict: unknown keys {unknown}; expected keys among {sorted(known)}")
        if "modality" not in d:
            raise ValueError("Preprocess.from_dict: missing key 'modality'")
        return cls(**{k: tuple(v) if k in ("mean", "std") and isinstance(v, list) else v for k, v in d.items()})

    @property
    def shape(self) -> tuple[int, int, int]:
        """Output shape ``(channels, height, width)``."""
        return self.channels, self.height, self.width

    @property
    def zero_value(self) -> np.ndarray:
        """Per-channel output value of a 0 input (black, or no depth): ``-mean / std``, shape ``(channels,)``."""
        if self.channels == 1:
            return np.array([-np.mean(self.mean) / np.mean(self.std)], np.float32)
        return (-np.asarray(self.mean) / np.asarray(self.std)).astype(np.float32)

    def _fail(self, image: object, expected: str) -> ValueError:
        got = f"array of shape {image.shape} and dtype {image.dtype}" if isinstance(image, np.ndarray) else (
            type(image).__name__)
        return ValueError(f"Preprocess({self.modality}): expected {expected}, got {got}")

    def scale(self, image: np.ndarray) -> np.ndarray:
        """Resized image in [0, 1], ``H x W x 3`` (rgb) or ``H x W`` float32, before normalisation."""
        size = (self.width, self.height)
        if not isinstance(image, np.ndarray) or image.size == 0:
            raise self._fail(image, "a non-empty numpy array")
        if image.ndim == 3 and image.shape[2] == 1 and self.modality != "rgb":
            image = image[..., 0]
        if self.modality == "rgb":
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise self._fail(image, "an H x W x 3 uint8 RGB image")
            return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        if image.ndim != 2:
            raise self._fail(image, f"an H x W {self.modality} image")
        if self.modality == "depth":
            if image.dtype == np.uint16:
                d = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST).astype(np.float32) / 1000.0
            elif image.dtype == np.float32:
                d = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
            else:
                raise self._fail(image, "uint16 millimetres or float32 metres")
            lo, hi = self.depth_min_m, self.depth_max_m
            valid = np.isfinite(d) & (d > 0) & (d <= hi)
            if self.depth_window_m is not None:
                return _relative_depth(d, valid, self.depth_window_m)
            v = np.clip((hi - np.where(valid, d, hi)) / (hi - lo), 0.0, 1.0)
            return np.where(valid, v, 0.0).astype(np.float32)
        if image.dtype == np.uint8:
            denom = 255.0
        elif image.dtype == np.uint16:
            denom = 65535.0
        else:
            raise self._fail(image, f"a uint8 or uint16 {self.modality} image")
        return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR).astype(np.float32) / np.float32(denom)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The normalised ``channels x height x width`` float32 array of one crop."""
        x = self.scale(image)
        if x.ndim == 3:
            chw = (x @ _LUMA)[None] if self.channels == 1 else x.transpose(2, 0, 1)
        else:
            chw = np.repeat(x[None], self.channels, axis=0)
        if self.channels == 1:
            mean, std = np.float32(np.mean(self.mean)), np.float32(np.mean(self.std))
            return np.ascontiguousarray((chw - mean) / std, dtype=np.float32)
        mean = np.asarray(self.mean, np.float32)[:, None, None]
        std = np.asarray(self.std, np.float32)[:, None, None]
        return np.ascontiguousarray((chw - mean) / std, dtype=np.float32)


def _relative_depth(d: np.ndarray, valid: np.ndarray, window: float) -> np.ndarray:
    """Depth in a ``window``-metre band centred on the median valid depth of the central region."""
    h, w = d.shape
    centre = (slice(h // 4, h - h // 4), slice(w // 4, w - w // 4))
    ref = d[centre][valid[centre]]
    if ref.size == 0:
        ref = d[valid]
    if ref.size == 0:
        return np.zeros_like(d, dtype=np.float32)
    v = 0.5 - (np.where(valid, d, 0.0) - float(np.median(ref))) / window
    return np.where(valid & (v >= 0), np.clip(v, 0.0, 1.0), 0.0).astype(np.float32)


def default_preprocess(modality: str, height: int = 256, width: int = 128) -> Preprocess:
    """ImageNet normalisation, 3 channels, depth over 0.5-8 m, at ``height x width``."""
    return Preprocess(modality, height, width)
