"""The floor plane in camera coordinates, and its estimation from depth points.

Shared by the depth people detector (:mod:`reidstream.pipeline.detect.depth_people`)
and the body measurer (:mod:`reidstream.pipeline.body.measure`).

Estimation (:class:`FloorEstimator`):

1. From the camera mount (``mount_height``, ``tilt_deg``) when known: the plane
   starts there and never strays further than ``mount_tolerance`` (m) and
   ``mount_tolerance_deg`` from it. Else RANSAC on the candidate points (the
   detector passes the lower half of the image), half the triplets drawn near
   each other in the image (a floor seen only between people's legs). A
   hypothesis must be plausible (camera ``min_camera_height`` ..
   ``max_camera_height`` above it, pitch within :data:`TILT_RANGE`, facing up
   within ``max_floor_angle_deg`` of the camera's up axis) and the floor is the
   *lowest* surface: at most :data:`MAX_BELOW` of all points may lie clearly
   below it (the plane through a crowd's shoulders or a table top has legs and
   floor below it), and its inliers must spread across the image
   (:data:`MIN_SPREAD`). The best supported such plane, polished by least
   squares on its inliers, wins; none: no floor yet (better than a wrong one).
2. Points nearer than ``floor_range`` are used where there are enough of them:
   far floor is noisy, and the foot of a back wall would tilt the fit.
3. The plane is cached and refined each frame by a smoothed fit to the points
   near it (``smoothing``), but never further than 2 degrees / 5 cm from the
   last *verified* plane (the anchor), so it cannot drift onto something else.
   Every ``retest_every`` frames a fresh search tests it: a plane with clearly
   more support replaces it (the floor became visible), one close to it renews
   the anchor. Support collapsing, or points appearing below the plane, for
   three frames in a row starts a fresh search at once (the camera moved).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from reidstream.pipeline.crops import intrinsics_of
from reidstream.pipeline.types import DepthUnit, Frame, Modality

TILT_RANGE = (-30.0, 90.0)
"""Plausible downward pitch of a camera (degrees): from looking up a little to straight down."""
MAX_BELOW = 0.03
"""Largest share of the points that may lie clearly below a floor (depth noise, stray pixels, reflections)."""
MIN_SPREAD = 0.2
"""Smallest horizontal extent of a floor's inliers in the image, relative to that of the candidate points."""


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
        mount_height: Known camera height above the floor (m), with ``tilt_deg``: the plane starts from it and
            stays within ``mount_tolerance`` / ``mount_tolerance_deg`` of it.
        tilt_deg: Known downward pitch of the camera (degrees); also orients the "up" axis RANSAC expects.
        max_floor_angle_deg: Largest angle between the floor's normal and the camera's up axis.
        floor_range: Depth (m) up to which points find and refine the floor (all, if too few are nearer).
        tolerance: Distance (m) of a floor point from the plane (RANSAC inliers, refinement).
        smoothing: Weight of each frame's refit in the cached plane (0 = never refine).
        min_camera_height: Lowest plausible camera height above a floor (m).
        max_camera_height: Highest plausible camera height above a floor (m).
        mount_tolerance: How far (m) the fitted camera height may stray from a known ``mount_height``.
        mount_tolerance_deg: How far (degrees) the fitted floor normal may stray from a known mount's.
        retest_every: Frames between fresh searches that test the cached plane against a new hypothesis.
        seed: Seed of the RANSAC sampling.

    Attributes:
        floor: The current estimate (None before the first success, without a known mount).

    Raises:
        ValueError: only one of ``mount_height`` and ``tilt_deg`` given, or a value out of range.
    """

    def __init__(self, *, mount_height: float | None = None, tilt_deg: float | None = None,
                 max_floor_angle_deg: float = 60.0, floor_range: float = 6.0, tolerance: float = 0.05,
                 smoothing: float = 0.2, min_camera_height: float = 0.3, max_camera_height: float = 4.0,
                 mount_tolerance: float = 0.15, mount_tolerance_deg: float = 3.0, retest_every: int = 15,
                 seed: int = 0) -> None:
        if (mount_height is None) != (tilt_deg is None):
            raise ValueError("give both mount_height and tilt_deg (a known mount), or neither")
        if not 0.0 < min_camera_height < max_camera_height:
            raise ValueError(f"expected 0 < min_camera_height < max_camera_height, got {min_camera_height} and "
                             f"{max_camera_height}")
        if mount_height is not None and not min_camera_height <= mount_height <= max_camera_height:
            raise ValueError(f"mount_height {mount_height} m is outside the plausible camera heights "
                             f"{min_camera_height}-{max_camera_height} m (min_camera_height, max_camera_height)")
        if tilt_deg is not None and not TILT_RANGE[0] <= tilt_deg <= TILT_RANGE[1]:
            raise ValueError(f"tilt_deg {tilt_deg} is outside {TILT_RANGE[0]}..{TILT_RANGE[1]} degrees (down positive)")
        if retest_every < 1 or mount_tolerance <= 0 or mount_tolerance_deg <= 0:
            raise ValueError(f"expected retest_every >= 1 and positive mount tolerances, got {retest_every}, "
                             f"{mount_tolerance}, {mount_tolerance_deg}")
        self.mount_height, self.tilt_deg = mount_height, tilt_deg
        self.max_floor_angle_deg, self.floor_range = float(max_floor_angle_deg), float(floor_range)
        self.tolerance, self.smoothing = float(tolerance), float(smoothing)
        self.min_camera_height, self.max_camera_height = float(min_camera_height), float(max_camera_height)
        self.mount_tolerance, self.mount_tolerance_deg = float(mount_tolerance), float(mount_tolerance_deg)
        self.retest_every = int(retest_every)
        self._rng = np.random.default_rng(seed)
        self._mount = FloorPlane.from_mount(mount_height, tilt_deg) if mount_height is not None else None
        self._up = FloorPlane.from_mount(1.0, tilt_deg or 0.0).normal
        self.reset()

    def reset(self) -> None:
        """Forgets the estimate (a new camera or scene); a known mount gives the plane again."""
        self.floor: FloorPlane | None = self._mount
        self._anchor = self._mount  # the last verified plane: refinement may not drift away from it
        self._support = 0.0
        self._misses = self._age = 0

    # ------------------------------------------------------------------ checks
    def _below_margin(self, pts: np.ndarray) -> np.ndarray:
        """How far (m) below a floor a point must be to count against it: noise grows with depth squared."""
        return max(3.0 * self.tolerance, 0.15) + 0.005 * pts[:, 2].astype(np.float64) ** 2

    def _plausible(self, n: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Which planes ``(K x 3 normals, K offsets)`` could be the floor: height, tilt, facing, known mount."""
        tilt = np.degrees(np.arctan2(-n[:, 2], -n[:, 1]))
        ok = ((n @ self._up >= math.cos(math.radians(self.max_floor_angle_deg)))
              & (d >= self.min_camera_height) & (d <= self.max_camera_height)
              & (tilt >= TILT_RANGE[0]) & (tilt <= TILT_RANGE[1]))
        if self._mount is not None:
            ok &= ((n @ self._mount.normal >= math.cos(math.radians(self.mount_tolerance_deg)))
                   & (np.abs(d - self._mount.offset) <= self.mount_tolerance))
        return ok

    def _check(self, plane: FloorPlane, pts: np.ndarray) -> tuple[int, float]:
        """Inliers of ``plane`` among ``pts`` and the share of ``pts`` clearly below it (0 for a true floor)."""
        h = plane.height(pts)
        return int((np.abs(h) < self.tolerance).sum()), float((h < -self._below_margin(pts)).mean())

    def _spread(self, plane: FloorPlane, pts: np.ndarray) -> float:
        """Horizontal extent of the plane's inliers in the image (5-95 %) relative to that of all ``pts``."""
        u = pts[:, 0] / pts[:, 2]
        inl = u[np.abs(plane.height(pts)) < self.tolerance]
        if len(inl) < 10:
            return 0.0
        span = np.subtract(*np.percentile(u, [95, 5]))
        return float(np.subtract(*np.percentile(inl, [95, 5])) / max(span, 1e-6))

    def _near(self, a: FloorPlane, b: FloorPlane, offset: float = 0.05, degrees: float = 2.0) -> bool:
        return bool(a.normal @ b.normal >= math.cos(math.radians(degrees)) and abs(a.offset - b.offset) <= offset)

    # ------------------------------------------------------------------ search
    def _triplets(self, sample: np.ndarray, iterations: int) -> np.ndarray:
        """``iterations x 3`` point indices: half anywhere, half within ~0.08 rad of each other in the image (a
        floor seen only in the gaps between people is found there far more often than by global triplets)."""
        rng, m = self._rng, len(sample)
        tri = rng.integers(0, m, (iterations, 3))
        local = iterations // 2
        uv = sample[:, :2] / sample[:, 2:3]
        first = tri[:local, 0]
        close = (uv[None, :, 0] - uv[first, None, 0]) ** 2 + (uv[None, :, 1] - uv[first, None, 1]) ** 2 < 0.08 ** 2
        keys = np.where(close, rng.random((local, m)), -1.0)
        keys[np.arange(local), first] = -1.0
        tri[:local, 1:] = np.argpartition(-keys, 2, axis=1)[:, :2]
        return tri

    def ransac(self, pts: np.ndarray, everything: np.ndarray | None = None,
               iterations: int = 192) -> FloorPlane | None:
        """A floor plane found afresh in ``N x 3`` candidate points, or None.

        The floor is the best supported plausible plane (camera height and tilt in range, facing up, near a
        known mount) that nothing of ``everything`` (default: ``pts``) lies clearly below and whose inliers
        spread across the image: the plane through people's shoulders or a table has points below it.
        """
        if len(pts) < 50:
            return None
        rng = self._rng
        sample = pts[rng.choice(len(pts), min(len(pts), 2000), replace=False)].astype(np.float64)
        ref = pts if everything is None else np.asarray(everything)
        ref = ref[rng.choice(len(ref), min(len(ref), 2000), replace=False)].astype(np.float64)
        tri = sample[self._triplets(sample, iterations)]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        norm = np.linalg.norm(n, axis=1)
        ok = norm > 1e-3
        n = n[ok] / norm[ok, None]
        n *= np.where(n @ self._up >= 0, 1.0, -1.0)[:, None]
        d = -(n * tri[ok, 0]).sum(1)
        ok = self._plausible(n, d)
        if not ok.any():
            return None
        n, d = n[ok], d[ok]
        support = (np.abs(sample @ n.T + d) < self.tolerance).sum(0)
        below = ((ref @ n.T + d) < -self._below_margin(ref)[:, None]).mean(0)
        order = [int(i) for i in np.argsort(-support, kind="stable") if below[i] <= MAX_BELOW and support[i] >= 30]
        best, best_support = None, 0
        for i in order[:4]:  # polish the best few, then check them again
            plane = FloorPlane(n[i], float(d[i]))
            for scale in (3.0, 2.0, 1.0):  # least squares on the inliers, window shrinking (less truncation bias)
                near = np.abs(plane.height(pts)) < scale * self.tolerance
                plane = FloorPlane.fit(pts[near][:: max(1, int(near.sum()) // 3000)], self._up) or plane
            count, share = self._check(plane, sample)
            if (count > best_support and share <= MAX_BELOW and self._check(plane, ref)[1] <= MAX_BELOW
                    and self._plausible(plane.normal[None], np.array([plane.offset]))[0]
                    and self._spread(plane, sample) >= MIN_SPREAD):
                best, best_support = plane, count
        return best

    # ------------------------------------------------------------------ track
    def _adopt(self, plane: FloorPlane, support: int) -> FloorPlane:
        self.floor = self._anchor = plane
        self._support, self._misses, self._age = float(support), 0, 0
        return plane

    def update(self, points: np.ndarray, lower: np.ndarray | None = None) -> FloorPlane | None:
        """Refines the cached plane with this frame's points, tests it, and estimates it afresh when lost.

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
            found = self.ransac(candidates, pts)
            return None if found is None else self._adopt(found, self._check(found, pts)[0])
        count, below = self._check(self.floor, pts)
        bad = below > MAX_BELOW or count < max(30.0, 0.4 * self._support)
        self._misses = self._misses + 1 if bad else 0
        self._age += 1
        if self._misses >= 3 or self._age >= self.retest_every:  # lost (camera moved), or time to test it again
            self._age = 0
            found = self.ransac(candidates, pts)
            if found is not None:
                f_count = self._check(found, pts)[0]
                if self._misses >= 3 or f_count >= 1.25 * count + 50:
                    return self._adopt(found, f_count)
                if self._anchor is None or self._near(found, self._anchor):
                    self._anchor = found  # verified again: refinement may follow it
        if bad:
            return self.floor
        self._support = count if self._support == 0 else 0.9 * self._support + 0.1 * count
        if self.smoothing > 0:
            near = np.abs(self.floor.height(pts)) < self.tolerance
            refit = FloorPlane.fit(pts[near][:: max(1, count // 1500)], self._up)
            if refit is not None and (self._anchor is None or self._near(refit, self._anchor)):
                blended = self.floor.blend(refit, self.smoothing)
                if self._plausible(blended.normal[None], np.array([blended.offset]))[0]:
                    self.floor = blended
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
