"""Which floor positions to trust: body measures taken through someone in front are caught before association.

A body meter measures a detection on the nearest surface inside its box. When a
nearer person overlaps the box, that surface is the nearer person: the
detection gets their floor position (and height). Two checks find such rows:

* :func:`shadowed` - two detections on the same spot: the one farther back
  (box ending higher in the image) was measured through the other.
* :class:`BoxScale` - the box is too small for the measured distance. For a
  whole (uncut) box, ``box height (px) x distance (m) / body height (m)`` is the
  camera's focal length up to the camera tilt, the same for everyone: measured on
  the simulator it spreads +-2 % around its median, while rows measured through
  someone in front fall 12-65 % below it. The scale is learnt online (a running
  median-like estimate), so the tracker needs no intrinsics. Boxes ending on the
  lowest row seen so far (the image's lower border: the person's feet are cut
  off, so the box is short) are not checked.
"""

from __future__ import annotations

import math

import numpy as np

_NOMINAL_HEIGHT = 1.7  # metres, for rows without a measured height


def shadowed(boxes: np.ndarray, position: np.ndarray, separation: float) -> np.ndarray:
    """Detections whose floor position lies within ``separation`` of another's and who stand farther back.

    Two people cannot stand on the same spot: when two positions coincide, the farther person was
    measured through the nearer one's pixels. The farther person is the one whose box ends higher in
    the image (feet farther away). Where both boxes end on the same row (both run off the image's
    lower border) either may be in front: both are marked.

    Args:
        boxes: ``N x 4`` xyxy boxes.
        position: ``N x 2`` floor positions, NaN rows unknown.
        separation: Distance (m) below which two positions are one spot.
    """
    idx = np.flatnonzero(np.isfinite(position).all(axis=1))
    out = np.zeros(len(boxes), bool)
    if idx.size < 2:
        return out
    p = position[idx]
    close = np.linalg.norm(p[:, None, :] - p[None, :, :], axis=2) < separation
    np.fill_diagonal(close, False)
    bottom = boxes[idx, 3].astype(np.float64)
    out[idx] = (close & (bottom[:, None] <= bottom[None, :] + 2.0)).any(axis=1)
    return out


class BoxScale:
    """Learns the scale ``box height x distance / body height`` online and flags rows far below it.

    Args:
        tolerance: Relative shortfall below the scale from which a row is flagged (with a measured height).
        tolerance_nominal: The same for rows without a measured height (a nominal 1.7 m is assumed).
        warmup: Rows with a measured height collected before the first estimate (their median).
        rate: Step of the running estimate (in log scale) towards each consistent row.
    """

    def __init__(self, tolerance: float = 0.15, tolerance_nominal: float = 0.25, warmup: int = 15,
                 rate: float = 0.02) -> None:
        self.tolerance, self.tolerance_nominal, self.warmup, self.rate = tolerance, tolerance_nominal, warmup, rate
        self.reset()

    def reset(self) -> None:
        """Forgets the scale (another camera)."""
        self.log_scale: float | None = None
        self._first: list[float] = []
        self._lowest = -math.inf

    @property
    def scale(self) -> float | None:
        """The current estimate (pixels x metres / metres, about the focal length), None until learnt."""
        return None if self.log_scale is None else math.exp(self.log_scale)

    def check(self, boxes: np.ndarray, distance: np.ndarray, height: np.ndarray) -> np.ndarray:
        """Flags rows whose box is too short for their measured distance; learns from the others.

        Args:
            boxes: ``N x 4`` xyxy boxes.
            distance: ``N`` measured distances (m), NaN unknown (never flagged).
            height: ``N`` measured body heights (m), NaN unknown.

        Returns:
            ``N`` bool, True where the measures were taken on something nearer than the person.
        """
        n = len(boxes)
        if n == 0:
            return np.zeros(0, bool)
        self._lowest = max(self._lowest, float(boxes[:, 3].max()))
        whole = (boxes[:, 3] < self._lowest - 1.0) & np.isfinite(distance) & (distance > 0)
        known = np.isfinite(height) & (height > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            log_k = np.log((boxes[:, 3] - boxes[:, 1]) * distance / np.where(known, height, _NOMINAL_HEIGHT))
        learn = whole & known & np.isfinite(log_k)
        if self.log_scale is None:
            self._first.extend(log_k[learn].tolist())
            if len(self._first) >= self.warmup:
                self.log_scale = float(np.median(self._first))
                self._first = []
            return np.zeros(n, bool)
        short = self.log_scale - log_k
        limit = np.where(known, -math.log(1.0 - self.tolerance), -math.log(1.0 - self.tolerance_nominal))
        flagged = whole & np.isfinite(short) & (short > limit)
        good = learn & (np.abs(short) <= -math.log(1.0 - self.tolerance))
        if good.any():
            self.log_scale -= self.rate * float(np.mean(np.clip(short[good], -0.05, 0.05))) * good.sum()
        return flagged


__all__ = ["BoxScale", "shadowed"]
