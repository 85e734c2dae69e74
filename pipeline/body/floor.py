"""The floor plane in camera coordinates, and its estimation from depth points.

Shared by the depth people detector (:mod:`reidstream.pipeline.detect.depth_people`)
and the body measurer (:mod:`reidstream.pipeline.body.measure`).

Estimation (:class:`FloorEstimator`):

1. From the camera mount (``mount_height``, ``tilt_deg``) when known, else RANSAC
   on the candidate points (the detector passes the lower half of the image):
   planes facing up within ``max_floor_angle_deg`` of the camera's up axis; a
   well supported plane parallel to the best one and lower wins, so a table does
   not. Polished by least squares on its inliers, the window shrinking.
2. Points nearer than ``floor_range`` are used where there are enough of them:
   far floor is noisy, and the foot of a back wall would tilt the fit.
3. The plane is cached and refined each frame by a smoothed fit to the points
   near it (``smoothing``), and estimated afresh when its support collapses for
   three frames in a row (the camera moved, or the floor is hidden).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from reidstream.pipeline.crops import intrinsics_of
from reidstream.pipeline.types import DepthUnit, Frame, Modality


@dataclass(frozen=True)
class FloorPlane:
    """The floor in camera coordinates: ``height(p) = normal . p + offset``.

    Attributes:
        normal: Unit normal pointing up (away from the floor, towards the camera side).
        offset: Height of the camera's optical centre above the floor (m).
    """

    normal: np.ndarray
    offset: float

    @classmethod
    def from_mount(cls, height: float, tilt_deg: float) -> "FloorPlane":
        """The floor seen by a camera ``height`` m above it, pitched down ``tilt_deg`` (no roll)."""
        t = math.radians(tilt_deg)
        return cls(np.array([0.0, -math.cos(t), -math.sin(t)]), float(height))

    @classmethod
    def fit(cls, points: np.ndarray, up: np.ndarray) -> "FloorPlane | None":
        """Least-squares plane through ``N x 3`` points, normal oriented along ``up``; None if degenerate."""
        if len(points) < 3:
            return None
        c = points.mean(axis=0, dtype=np.float64)
        _, s, vt = np.linalg.svd(points - c, full_matrices=False)
        if s[1] < 1e-6:
            return None
        n = vt[2] if vt[2] @ up >= 0 else -vt[2]
        return cls(n, float(-(n @ c)))

    @property
    def camera_height(self) -> float:
        """Height of the camera above the floor (m)."""
        return self.offset

    @property
    def tilt_deg(self) -> float:
        """Downward pitch of the camera implied by the plane (degrees)."""
        return math.degrees(math.atan2(-self.normal[2], -self.normal[1]))

    def height(self, points: np.ndarray) -> np.ndarray:
        """Heights above the floor of ``N x 3`` camera-frame points."""
        return points @ self.normal.astype(points.dtype) + np.asarray(self.offset, points.dtype)

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors spanning the floor: lateral (the camera's x on the floor) and forward (its view direction).

        Floor coordinates ``(p . lateral, p . forward)`` of a camera-frame point ``p`` are metres from the
        point of the floor below the camera.
        """
        n = np.asarray(self.normal, np.float64)
        lateral = np.array([1.0, 0.0, 0.0]) - n[0] * n
        lateral /= np.linalg.norm(lateral)
        return lateral, np.cross(n, lateral)

    def blend(self, other: "FloorPlane", weight: float) -> "FloorPlane":
        """``(1 - weight) * self + weight * other``, renormalised."""
        n = (1 - weight) * self.normal + weight * other.normal
        norm = np.linalg.norm(n)
        return FloorPlane(n / norm, ((1 - weight) * self.offset + weight * other.offset) / norm)


class FloorEstimator:
    """Finds and tracks the floor plane from camera-frame depth points (see the module docstring).

    Args:
        mount_height: Known camera height above the floor (m), with ``tilt_deg``: the plane starts from it.
        tilt_deg: Known downward pitch of the camera (degrees); also orients the "up" axis RANSAC expects.
        max_floor_angle_deg: Largest angle between the floor's normal and the camera's up axis.
        floor_range: Depth (m) up to which points find and refine the floor (all, if too few are nearer).
        tolerance: Distance (m) of a floor point from the plane (RANSAC inliers, refinement).
        smoothing: Weight of each frame's refit in the cached plane (0 = never refine).
        seed: Seed of the RANSAC sampling.

    Attributes:
        floor: The current estimate (None before the first success, without a known mount).

    Raises:
        ValueError: only one of ``mount_height`` and ``tilt_deg`` given.
    """

    def __init__(self, *, mount_height: float | None = None, tilt_deg: float | None = None,
                 max_floor_angle_deg: float = 60.0, floor_range: float = 6.0, tolerance: float = 0.05,
                 smoothing: float = 0.2, seed: int = 0) -> None:
        if (mount_height is None) != (tilt_deg is None):
            raise ValueError("give both mount_height and tilt_deg (a known mount), or neither")
        self.mount_height, self.tilt_deg = mount_height, tilt_deg
        self.max_floor_angle_deg, self.floor_range = float(max_floor_angle_deg), float(floor_range)
        self.tolerance, self.smoothing = float(tolerance), float(smoothing)
        self._rng = np.random.default_rng(seed)
        t = math.radians(tilt_deg or 0.0)
        self._up = np.array([0.0, -math.cos(t), -math.sin(t)])
        self.reset()

    def reset(self) -> None:
        """Forgets the estimate (a new camera or scene); a known mount gives the plane again."""
        self.floor: FloorPlane | None = (FloorPlane.from_mount(self.mount_height, self.tilt_deg)
                                         if self.mount_height is not None else None)
        self._support = 0.0
        self._misses = 0

    def ransac(self, pts: np.ndarray, iterations: int = 96) -> FloorPlane | None:
        """A floor plane found afresh in ``N x 3`` points (the lowest well supported upward plane), or None."""
        if len(pts) < 50:
            return None
        sample = pts[self._rng.choice(len(pts), min(len(pts), 2500), replace=False)].astype(np.float64)
        tri = sample[self._rng.integers(0, len(sample), (iterations, 3))]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        norm = np.linalg.norm(n, axis=1)
        ok = norm > 1e-9
        n = n[ok] / norm[ok, None]
        n *= np.where(n @ self._up >= 0, 1.0, -1.0)[:, None]
        d = -(n * tri[ok, 0]).sum(1)
        ok = (n @ self._up >= math.cos(math.radians(self.max_floor_angle_deg))) & (d > 0.1)
        if not ok.any():
            return None
        n, d = n[ok], d[ok]
        support = (np.abs(sample @ n.T + d) < self.tolerance).sum(0)
        best = int(np.argmax(support))
        if support[best] < 30:
            return None
        # A well supported plane parallel to the best one and clearly below it is the floor (the best was a table).
        below = ((support >= 0.5 * support[best]) & (n @ n[best] > math.cos(math.radians(10.0)))
                 & (d > d[best] + 0.3))
        if below.any():
            best = int(np.flatnonzero(below)[np.argmax(d[below])])
        plane = FloorPlane(n[best], float(d[best]))
        for scale in (3.0, 2.0, 1.0):  # least-squares polish on the inliers, window shrinking (less truncation bias)
            near = np.abs(plane.height(pts)) < scale * self.tolerance
            plane = FloorPlane.fit(pts[near][:: max(1, int(near.sum()) // 3000)], self._up) or plane
        return plane

    def update(self, points: np.ndarray, lower: np.ndarray | None = None) -> FloorPlane | None:
        """Refines the cached plane with this frame's points, or estimates it afresh when lost.

        Args:
            points: ``N x 3`` camera-frame points of the frame (metres; any subsampling).
            lower: ``N`` bool, the points RANSAC may use (the detector passes the lower half of the
                image, where the floor is); None: all of them.

        Returns:
            The current floor plane (also in :attr:`floor`), or None while none has been found.
        """
        pts = np.asarray(points)
        lower = np.ones(len(pts), bool) if lower is None else np.asarray(lower, bool)
        close = pts[:, 2] <= self.floor_range
        if close.sum() >= 200:
            pts, lower = pts[close], lower[close]
        candidates = pts[lower] if lower.sum() >= 50 else pts
        if self.floor is None:
            self.floor = self.ransac(candidates)
            self._support, self._misses = 0.0, 0
            if self.floor is None:
                return None
        near = np.abs(self.floor.height(pts)) < self.tolerance
        count = int(near.sum())
        if count < max(30.0, 0.4 * self._support):
            self._misses += 1
            if self._misses >= 3:  # the floor moved (or is hidden): look for it again
                found = self.ransac(candidates)
                if found is not None:
                    self.floor, self._support, self._misses = found, 0.0, 0
            return self.floor
        self._misses = 0
        self._support = count if self._support == 0 else 0.9 * self._support + 0.1 * count
        if self.smoothing > 0:
            refit = FloorPlane.fit(pts[near][:: max(1, count // 1500)], self._up)
            if refit is not None and refit.normal @ self.floor.normal > math.cos(math.radians(5.0)) \
                    and abs(refit.offset - self.floor.offset) < 0.1:
                self.floor = self.floor.blend(refit, self.smoothing)
        return self.floor

    def update_from_frame(self, frame: Frame, step: int = 8, max_range: float = 9.0) -> FloorPlane | None:
        """:meth:`update` with every ``step``-th pixel of ``frame``'s depth image (the lower half for RANSAC).

        Raises:
            ValueError: the frame has no depth image, or no intrinsics for it.
        """
        k = intrinsics_of(frame, Modality.DEPTH) if frame.depth is not None else None
        if k is None:
            raise ValueError(f"FloorEstimator: frame {frame.index} of camera '{frame.camera_id}' has no depth image "
                             f"with intrinsics")
        raw = frame.depth[::step, ::step]
        z = raw.astype(np.float32) * np.float32(0.001) if frame.depth_unit is DepthUnit.MILLIMETRE \
            else raw.astype(np.float32)
        rows, cols = np.nonzero((z > 0) & (z <= max_range))
        zi = z[rows, cols]
        pts = np.stack([(cols * step - k.cx) / k.fx * zi, (rows * step - k.cy) / k.fy * zi, zi], axis=1)
        return self.update(pts.astype(np.float32), rows >= raw.shape[0] // 2)


__all__ = ["FloorEstimator", "FloorPlane"]
