"""What :class:`~reidstream.pipeline.track.floor.FloorTracker` knows of one frame's detections and of each track.

:class:`Observations` checks and flattens a frame's inputs (detections, body
measures, appearance vectors) into aligned arrays; :class:`TrackState` is one
track: its floor and box Kalman filters, running height and appearance, and its
lifecycle counters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from reidstream.pipeline.track.checks import BoxScale, shadowed
from reidstream.pipeline.track.motion import ConstantVelocityKalman
from reidstream.pipeline.types import Detections

if TYPE_CHECKING:  # the tracker only reads the fields of BodyMeasures
    from reidstream.pipeline.body.measure import BodyMeasures
    from reidstream.pipeline.track.floor import FloorTrackerConfig

_PERSON_M = 1.7  # metres a box height stands for, to turn the floor motion model into pixels


def _column(owner: str, name: str, value, n: int, tail: tuple = ()) -> np.ndarray:
    a = np.asarray(value, np.float64)
    if a.shape != (n,) + tail:
        want = ", ".join(str(s) for s in (n,) + tail)
        raise ValueError(f"{owner}: expected shape ({want}) for {n} detections, got {a.shape}")
    return a


def _unit_rows(appearance, n: int) -> np.ndarray:
    """``appearance`` as ``n x D`` float64 unit rows; rows of zero or non-finite norm become NaN (unknown)."""
    app = np.asarray(appearance, np.float64)
    if app.ndim != 2 or app.shape[0] != n or app.shape[1] == 0:
        raise ValueError(f"FloorTracker.update: appearance: expected an {n} x D array (one row per "
                         f"detection, D > 0), got shape {app.shape}")
    norm = np.linalg.norm(app, axis=1, keepdims=True)
    ok = np.isfinite(norm) & (norm > 0)
    return np.where(ok, app / np.where(ok, norm, 1.0), np.nan)


def _position_var(distance: np.ndarray, cfg: "FloorTrackerConfig") -> np.ndarray:
    """Variance (m^2) of a floor position measured ``distance`` m from the camera."""
    return (cfg.position_noise + cfg.position_noise_per_m * distance) ** 2


def _cxcywh(box: np.ndarray) -> np.ndarray:
    """``x1, y1, x2, y2`` -> centre, width, height (at least a pixel)."""
    w, h = max(box[2] - box[0], 1.0), max(box[3] - box[1], 1.0)
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, w, h])


@dataclass(frozen=True, eq=False)
class Observations:
    """One frame's detections with their floor positions, heights and appearance, as aligned arrays.

    Attributes:
        boxes: ``N x 4`` xyxy boxes (float64).
        scores: ``N`` detection scores.
        position: ``N x 2`` floor positions (m), NaN rows without depth.
        has_floor: ``N`` whether the position is known.
        position_var: ``N`` isotropic variance of the position (m^2), inf where unknown.
        height: ``N`` heights (m), NaN where unknown.
        height_var: ``N`` variance of the height incl. posture noise (m^2), inf where unknown.
        appearance: ``N x D`` unit rows (NaN rows unknown), or None.
    """

    boxes: np.ndarray
    scores: np.ndarray
    position: np.ndarray
    has_floor: np.ndarray
    position_var: np.ndarray
    height: np.ndarray
    height_var: np.ndarray
    appearance: np.ndarray | None

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def build(cls, detections: Detections, measures: "BodyMeasures | None", appearance: np.ndarray | None,
              cfg: "FloorTrackerConfig", scale: BoxScale | None = None) -> "Observations":
        """Checks the inputs of :meth:`FloorTracker.update` against the detections and derives the arrays.

        Floor positions and heights measured through someone in front (:mod:`~reidstream.pipeline.track.checks`:
        two detections on one spot, or a box too short for its distance when ``scale`` is given) are
        dropped: those detections are associated on their boxes.

        Raises:
            ValueError: measures or appearance whose rows do not follow the detections.
        """
        if not isinstance(detections, Detections):
            raise ValueError(f"FloorTracker.update: detections: expected Detections, got {type(detections).__name__}")
        n = len(detections)
        position = np.full((n, 2), np.nan)
        height = np.full(n, np.nan)
        height_sigma = np.full(n, np.inf)
        distance = np.full(n, np.nan)
        if measures is not None:
            if len(measures) != n:
                raise ValueError(f"FloorTracker.update: measures: expected {n} rows (one per detection), "
                                 f"got {len(measures)}")
            position = _column("FloorTracker.update: measures.position", "position", measures.position, n, (2,))
            distance = _column("FloorTracker.update: measures.distance", "distance", measures.distance, n)
            height = _column("FloorTracker.update: measures.height", "height", measures.height, n)
            height_sigma = _column("FloorTracker.update: measures.height_sigma", "height_sigma",
                                   measures.height_sigma, n)
        app = None if appearance is None else _unit_rows(appearance, n)
        behind = shadowed(detections.boxes, position, cfg.min_separation)
        if scale is not None:
            behind |= scale.check(detections.boxes, distance, np.where(np.isfinite(height_sigma), height, np.nan))
        behind &= np.isfinite(position).all(axis=1)
        if behind.any():  # measured on someone in front: no floor position, no height
            position, height = position.copy(), height.copy()
            position[behind], height[behind] = np.nan, np.nan
        has_floor = np.isfinite(position).all(axis=1)
        dist = np.where(np.isfinite(distance), distance, np.linalg.norm(np.nan_to_num(position), axis=1))
        position_var = np.where(has_floor, _position_var(dist, cfg), np.inf)
        known = np.isfinite(height) & np.isfinite(height_sigma)
        height = np.where(known, height, np.nan)
        height_var = np.where(known, np.nan_to_num(height_sigma, posinf=0.0) ** 2 + cfg.height_noise ** 2, np.inf)
        return cls(detections.boxes.astype(np.float64), detections.scores.astype(np.float64), position, has_floor,
                   position_var, height, height_var, app)


@dataclass(eq=False)
class TrackState:
    """One track of :class:`FloorTracker`.

    Attributes:
        box: Constant-velocity Kalman filter of the box's centre, width and height (pixels).
        floor: Constant-velocity Kalman filter of the floor position (m), None until a detection had depth.
        height: Running height estimate (m), NaN until measured.
        height_var: Its variance (m^2), inf until measured.
        appearance: EMA of the appearance vectors (unit), None until given.
        last_seen: Time of the last associated detection (s).
        hits: Consecutive frames with an associated detection (0 after a miss).
        track_id: Id once confirmed, else -1.
        floor_conflicts: Consecutive associated detections whose floor position disagreed.
        floor_seen_at: The last floor position measured for the track (m), NaN before any.
        floor_seen_var: Its measurement variance (m^2).
        floor_seen: When it was measured (s).
    """

    box: ConstantVelocityKalman
    floor: ConstantVelocityKalman | None
    height: float
    height_var: float
    appearance: np.ndarray | None
    last_seen: float
    hits: int = 1
    track_id: int = -1
    floor_conflicts: int = 0
    floor_seen_at: np.ndarray = field(default_factory=lambda: np.full(2, np.nan))
    floor_seen_var: float = math.inf
    floor_seen: float = -math.inf

    @classmethod
    def start(cls, obs: Observations, i: int, now: float, cfg: "FloorTrackerConfig") -> "TrackState":
        """A tentative track from detection ``i``."""
        b = _cxcywh(obs.boxes[i])
        px = b[3] / _PERSON_M  # pixels per metre, roughly
        box = ConstantVelocityKalman(b, (0.05 * b[3]) ** 2, (cfg.initial_speed_sigma * px) ** 2)
        floor = None
        if obs.has_floor[i]:
            floor = ConstantVelocityKalman(obs.position[i], obs.position_var[i], cfg.initial_speed_sigma ** 2)
        app = obs.appearance[i] if obs.appearance is not None and np.isfinite(obs.appearance[i]).all() else None
        track = cls(box, floor, float(obs.height[i]), float(obs.height_var[i]), None if app is None else app.copy(),
                    now)
        if floor is not None:
            track._saw_floor(obs, i, now)
        return track

    def _saw_floor(self, obs: Observations, i: int, now: float) -> None:
        self.floor_seen_at, self.floor_seen_var, self.floor_seen = obs.position[i].copy(), obs.position_var[i], now

    def predicted_box(self) -> np.ndarray:
        """The box filter's current ``x1, y1, x2, y2`` (at least a pixel wide and high)."""
        cx, cy, w, h = self.box.position
        w, h = max(w, 1.0), max(h, 1.0)
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

    def predict(self, dt: float, acceleration_noise: float, max_floor_sigma: float) -> None:
        """Moves the filters ``dt`` seconds ahead; drops a floor state vaguer than ``max_floor_sigma`` (m)."""
        h = max(self.box.position[3], 1.0)
        self.box.predict(dt, acceleration_noise * (h / _PERSON_M) ** 2)
        if self.floor is not None:
            self.floor.predict(dt, acceleration_noise)
            if np.trace(self.floor.position_cov) > 2 * max_floor_sigma ** 2:
                self.floor, self.floor_conflicts = None, 0

    def update(self, obs: Observations, i: int, now: float, cfg: "FloorTrackerConfig", floor_agrees: bool) -> None:
        """Folds detection ``i`` into the track; its floor position only if ``floor_agrees`` (or there is no
        floor state yet, or it disagreed ``floor_reset_frames`` times in a row: then the state restarts)."""
        b = _cxcywh(obs.boxes[i])
        self.box.update(b, (0.05 * b[3]) ** 2)
        if obs.has_floor[i]:
            self.floor_conflicts = 0 if floor_agrees or self.floor is None else self.floor_conflicts + 1
            if self.floor is None or self.floor_conflicts >= cfg.floor_reset_frames:
                self.floor = ConstantVelocityKalman(obs.position[i], obs.position_var[i], cfg.initial_speed_sigma ** 2)
                self.floor_conflicts = 0
            elif floor_agrees:
                self.floor.update(obs.position[i], obs.position_var[i])
            if self.floor_conflicts == 0:
                self._saw_floor(obs, i, now)
        if math.isfinite(obs.height[i]):
            if math.isfinite(self.height):
                total = self.height_var + obs.height_var[i]
                w = self.height_var / total if total > 0 else 0.5
                self.height += w * (obs.height[i] - self.height)
                self.height_var = max(self.height_var * (1 - w), (cfg.height_noise / 2) ** 2)
            else:
                self.height, self.height_var = float(obs.height[i]), float(obs.height_var[i])
        if obs.appearance is not None and np.isfinite(obs.appearance[i]).all():
            a = obs.appearance[i]
            if self.appearance is not None:
                a = cfg.appearance_momentum * self.appearance + (1 - cfg.appearance_momentum) * a
            self.appearance = a / max(float(np.linalg.norm(a)), 1e-12)
        self.last_seen = now
        self.hits += 1


__all__ = ["Observations", "TrackState"]
