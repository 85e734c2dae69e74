"""Short-term tracking on the floor plane: people kept apart by where they stand and how tall they are.

Image-box trackers (ByteTrack) lose people who cross: their boxes overlap, and a
box Kalman filter cannot tell who is in front. With depth, each detection has a
floor position in metres and a height (:class:`~reidstream.pipeline.body.measure.BodyMeasures`);
two people who overlap in the image are still a metre apart on the floor, or
differ in height. :class:`FloorTracker` associates on those:

* **State** per track: a constant-velocity Kalman filter of the floor position
  ``(x, forward, vx, vforward)`` (white-noise acceleration tuned to walking:
  ~1.4 m/s, turns, stops), a box Kalman filter in the image (for detections
  without depth), a running height estimate with its variance, and optionally
  an EMA of an appearance vector. A floor state left vaguer than
  ``max_floor_sigma`` (no floor measurement for a while) is dropped.
* **Measures checked first** (:mod:`~reidstream.pipeline.track.checks`): a body meter
  measures a box on its nearest surface, which is someone else when a nearer
  person overlaps it. Such rows (two detections on one spot; a box too short
  for its measured distance) lose their floor position and height.
* **Cost** of a track-detection pair: the squared Mahalanobis distance of the
  detection's floor position from the track's prediction plus ``ln det S /
  det R`` (the Gaussian log-likelihood: a track that has coasted for a while
  and grown uncertain does not steal detections from one seen a frame ago),
  plus the squared height difference in sigmas, ``iou_weight * (1 - IoU)`` with
  the predicted box (boxes still count: at 15-30 fps a person's box moves
  little) and an appearance term. Where either side has no floor position the
  pair is associated on the image alone: ``floor_gate^2 * (1 - IoU)``, gated by
  ``minimum_iou_threshold`` and ``max_box_growth``.
* **Gates** (a pair beyond any is never associated): floor distance beyond
  ``floor_gate`` sigmas, unless the box fits the prediction with IoU of at least
  ``box_override_iou`` (then the floor position is taken for a measurement on
  someone else and not used; after ``floor_reset_frames`` such detections in a
  row the track's floor state restarts from theirs); height difference beyond
  ``height_gate`` sigmas (both sigmas, plus ``height_noise`` for posture and
  gait); appearance cosine distance beyond ``appearance_gate``.
* **ByteTrack's lifecycle**: optimal assignment (Hungarian) of the high-score
  detections to every track, then of the low-score ones (below
  ``high_conf_det_threshold``) to the tracks left, which they may only continue;
  a track gets an id after ``minimum_consecutive_frames`` consecutive
  detections (a tentative track that misses a frame is dropped); a confirmed
  track that misses detections coasts on its prediction and keeps its id for
  ``lost_track_buffer_s`` seconds of capture time.

:meth:`FloorTracker.update` has the contract of :meth:`Tracker.update`: it returns
the tracked subset of the detections in input order (ids >= 0, unique until
:meth:`FloorTracker.reset`) and sets :attr:`FloorTracker.last_index`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field
from scipy.optimize import linear_sum_assignment

from reidstream.pipeline.config import ConfigModel
from reidstream.pipeline.track.checks import BoxScale
from reidstream.pipeline.track.motion import box_iou, mahalanobis_2d
from reidstream.pipeline.track.state import Observations, TrackState
from reidstream.pipeline.types import Detections

if TYPE_CHECKING:
    from reidstream.pipeline.body.measure import BodyMeasures

_BLOCKED = 1e9


class FloorTrackerConfig(ConfigModel):
    """Settings of :class:`FloorTracker` (section ``track`` of a pipeline config when the floor tracker is chosen)."""

    frame_rate: float = Field(30.0, gt=0.0)
    """Nominal camera frame rate: the time step between frames given without a timestamp."""
    lost_track_buffer_s: float = Field(1.0, ge=0.0)
    """How long (s) a confirmed track survives without detections, coasting on its prediction."""
    minimum_consecutive_frames: int = Field(2, ge=1)
    """Consecutive detections before a new track gets an id."""
    track_activation_threshold: float = Field(0.5, ge=0.0, le=1.0)
    """Lowest score that starts a new track (the depth detector scores a person whose trousers leave holes in
    the depth 0.4-0.5: at 0.6 such a person never got a track)."""
    high_conf_det_threshold: float = Field(0.5, ge=0.0, le=1.0)
    """Score splitting the first (high) and second (low, continue-only) association stages."""
    minimum_iou_threshold: float = Field(0.2, gt=0.0, le=1.0)
    """Lowest IoU of predicted and detected box to associate a pair without floor positions."""
    max_box_growth: float = Field(1.3, ge=1.0)
    """Largest ratio between a detected and a predicted box height (either way) to associate a pair without
    floor positions (a far person's small box is not a near person's large one, however much they overlap)."""
    floor_gate: float = Field(3.5, gt=0.0)
    """Largest Mahalanobis distance (sigmas) of a detection's floor position from a track's prediction."""
    box_override_iou: float = Field(0.7, gt=0.0, le=1.0)
    """IoU with a track's predicted box from which a detection is associated even beyond the floor gate (its
    floor position was measured on someone in front); such a position does not move the track's floor state."""
    max_speed: float = Field(2.0, gt=0.0)
    """Fastest walking speed (m/s): a detection farther from a track's last floor measurement than this speed
    allows (plus measurement noise) is not the track's person, however vague the track's prediction."""
    max_floor_sigma: float = Field(1.0, gt=0.0)
    """1-sigma (m) beyond which a track's floor state, not updated for a while (associated on boxes only), is
    dropped: too vague to gate with, it would let the track take anyone nearby."""
    floor_reset_frames: int = Field(3, ge=1)
    """Consecutive box-associated detections whose floor positions disagree after which the track's floor
    state restarts from the detection's (it was the track's own floor state that was wrong)."""
    acceleration_noise: float = Field(2.0, gt=0.0)
    """Spectral density (m^2/s^3) of the white-noise acceleration of a walking person (turns, stops)."""
    initial_speed_sigma: float = Field(1.4, gt=0.0)
    """1-sigma of a new track's unknown velocity (m/s): walking speed."""
    position_noise: float = Field(0.05, gt=0.0)
    """1-sigma of a measured floor position near the camera (m): body centroid wobble, partial views."""
    position_noise_per_m: float = Field(0.01, ge=0.0)
    """Growth of the position 1-sigma with distance (m per m): depth noise and sparser points far away. The
    defaults (0.08 m at 3 m, 0.12 m at 7 m) are about 1.5 x the body meter's error on the simulator."""
    min_separation: float = Field(0.25, ge=0.0)
    """Floor distance (m) below which two detections are one spot: the one with the shorter box (farther, seen
    through the nearer one's pixels) loses its floor position and height and is associated on its box."""
    box_scale_tolerance: float = Field(0.08, ge=0.0, lt=0.8)
    """Shortfall of ``box height x distance / height`` below its running estimate (a fraction; 0 turns the check
    off) from which a detection's floor position and height count as measured on someone in front."""
    height_gate: float = Field(3.0, gt=0.0)
    """Largest height difference of track and detection, in sigmas of the difference."""
    height_noise: float = Field(0.04, ge=0.0)
    """1-sigma (m) added to each measured height for posture and gait (the head bobs while walking)."""
    iou_weight: float = Field(8.0, ge=0.0)
    """Weight of ``1 - IoU`` in the cost of a pair associated on the floor."""
    appearance_gate: float = Field(0.4, gt=0.0, le=2.0)
    """Largest cosine distance of a detection's appearance vector from a track's."""
    appearance_weight: float = Field(2.0, ge=0.0)
    """Cost of a pair at the appearance gate (the term grows linearly with the cosine distance)."""
    appearance_momentum: float = Field(0.9, ge=0.0, lt=1.0)
    """EMA momentum of a track's appearance (0: only the latest detection)."""


class FloorTracker:
    """Tracks people on the floor plane, with image boxes where depth is missing (see the module docstring).

    Args:
        config: Settings; None for the defaults.

    Attributes:
        config: The settings.
        last_index: Input indices (into the last :meth:`update`'s detections) of the rows it returned.
    """

    def __init__(self, config: FloorTrackerConfig | None = None) -> None:
        self.config = config if config is not None else FloorTrackerConfig()
        self.reset()

    @classmethod
    def from_config(cls, cfg: FloorTrackerConfig) -> "FloorTracker":
        """A tracker with the settings of ``cfg``."""
        return cls(cfg)

    def reset(self) -> None:
        """Drops every track and restarts ids from 0 (a new video or scene)."""
        self._tracks: list[TrackState] = []
        self._time: float | None = None
        self._next_id = 0
        self._appearance_dim: int | None = None
        c = self.config
        self._scale = BoxScale(c.box_scale_tolerance, min(c.box_scale_tolerance + 0.1, 0.9)) \
            if c.box_scale_tolerance > 0 else None
        self.last_index = np.zeros(0, np.int64)

    def reset_appearance(self) -> None:
        """Forgets every track's running appearance, so that appearance vectors of another kind (another size)
        may follow, e.g. infrared statistics once the light is off instead of colour statistics."""
        for t in self._tracks:
            t.appearance = None
        self._appearance_dim = None

    @property
    def tracks(self) -> tuple[TrackState, ...]:
        """The live tracks (tentative ones included), read-only by convention."""
        return tuple(self._tracks)

    def update(self, detections: Detections, timestamp: float | None = None,
               measures: "BodyMeasures | None" = None, appearance: np.ndarray | None = None) -> Detections:
        """Associates one frame's detections with the tracks; returns the tracked subset (ids >= 0), in input order.

        Args:
            detections: All detections of the frame (give every frame, also empty ones: a missed
                frame is how tracks age).
            timestamp: Capture time in seconds (``frame.timestamp``); None advances the clock by
                ``1 / frame_rate``. Times must not decrease.
            measures: ``BodyMeasures`` of the detections (rows in detection order, NaN where not
                measurable), or None to track on image boxes only.
            appearance: ``N x D`` appearance vectors (unit rows, e.g. colour histograms; a NaN row is
                unknown), or None. Use the same ``D`` on every frame that has them.

        Returns:
            The tracked detections; :attr:`last_index` holds their indices in ``detections``.

        Raises:
            ValueError: measures or appearance of the wrong length or shape, a decreasing timestamp,
                or an appearance size that differs from earlier frames'.
        """
        now = self._clock(timestamp)
        shape = np.shape(appearance) if appearance is not None else ()
        if len(shape) == 2 and self._appearance_dim not in (None, shape[1]):
            raise ValueError(f"FloorTracker.update: appearance: expected {self._appearance_dim} values per row as "
                             f"on earlier frames, got {shape[1]}; call reset() to change the appearance features")
        obs = Observations.build(detections, measures, appearance, self.config, self._scale)
        if obs.appearance is not None:
            self._appearance_dim = obs.appearance.shape[1]
        c = self.config
        dt = 0.0 if self._time is None else now - self._time
        self._time = now
        for t in self._tracks:
            t.predict(dt, c.acceleration_noise, c.max_floor_sigma)
        self._tracks = [t for t in self._tracks if now - t.last_seen <= c.lost_track_buffer_s + 1e-9]
        high = np.flatnonzero(obs.scores >= c.high_conf_det_threshold)
        low = np.flatnonzero(obs.scores < c.high_conf_det_threshold)
        matched_tracks: set[int] = set()
        out_ids = np.full(len(obs), -1, np.int64)
        free_high = high
        for stage, dets in ((0, high), (1, low)):
            rows = [i for i in range(len(self._tracks)) if i not in matched_tracks]
            pairs, free = self._assign(rows, dets, obs)
            if stage == 0:
                free_high = free
            for ti, di, agrees in pairs:
                track = self._tracks[ti]
                track.update(obs, di, now, c, agrees)
                matched_tracks.add(ti)
                if track.track_id < 0 and track.hits >= c.minimum_consecutive_frames:
                    track.track_id, self._next_id = self._next_id, self._next_id + 1
                out_ids[di] = track.track_id
        for ti, t in enumerate(self._tracks):
            if ti not in matched_tracks:
                t.hits = 0
        self._tracks = [t for i, t in enumerate(self._tracks) if t.track_id >= 0 or i in matched_tracks]
        for di in free_high:
            if obs.scores[di] >= c.track_activation_threshold:
                track = TrackState.start(obs, int(di), now, c)
                if c.minimum_consecutive_frames <= 1:
                    track.track_id, self._next_id = self._next_id, self._next_id + 1
                    out_ids[di] = track.track_id
                self._tracks.append(track)
        keep = np.flatnonzero(out_ids >= 0)
        self.last_index = keep
        return Detections(detections.boxes[keep], detections.scores[keep], out_ids[keep], detections.modality,
                          detections.frame_index)

    def _clock(self, timestamp: float | None) -> float:
        if timestamp is None:
            return 0.0 if self._time is None else self._time + 1.0 / self.config.frame_rate
        t = float(timestamp)
        if not math.isfinite(t):
            raise ValueError(f"FloorTracker.update: timestamp: expected a finite number of seconds, got {timestamp!r}")
        if self._time is not None and t < self._time:
            raise ValueError(f"FloorTracker.update: timestamp {t} is earlier than the previous frame's "
                             f"({self._time}); call reset() when a new video starts")
        return t

    def _assign(self, rows: list[int], dets: np.ndarray,
                obs: Observations) -> tuple[list[tuple[int, int, bool]], np.ndarray]:
        """Optimal assignment of detections ``dets`` to tracks ``rows``.

        Returns:
            The pairs ``(track, detection, floor agrees)`` and the detections left free.
        """
        if not rows or not len(dets):
            return [], dets
        costs, agrees = zip(*(self._costs(self._tracks[r], dets, obs) for r in rows))
        cost = np.stack(costs)
        r_idx, c_idx = linear_sum_assignment(cost)
        ok = cost[r_idx, c_idx] < _BLOCKED
        pairs = [(rows[r], int(dets[j]), bool(agrees[r][j])) for r, j in zip(r_idx[ok], c_idx[ok])]
        used = np.zeros(len(dets), bool)
        used[c_idx[ok]] = True
        return pairs, dets[~used]

    def _costs(self, track: TrackState, dets: np.ndarray, obs: Observations) -> tuple[np.ndarray, np.ndarray]:
        """Cost of associating ``track`` with each detection in ``dets`` (``_BLOCKED`` beyond a gate), and
        whether each detection's floor position agrees with the track (False: associated on the box alone)."""
        c = self.config
        iou = box_iou(track.predicted_box()[None, :], obs.boxes[dets])[0]
        cost = np.full(len(dets), _BLOCKED)
        floor = obs.has_floor[dets] & (track.floor is not None)
        agrees = np.zeros(len(dets), bool)
        if floor.any():
            d = dets[floor]
            var = obs.position_var[d]
            d2, logdet = mahalanobis_2d(track.floor.position, track.floor.position_cov, obs.position[d], var)
            nll = d2 + logdet - 2 * np.log(var)  # ln det S / det R >= 0
            # Nobody walks faster than max_speed since the track's last floor measurement.
            reach = c.max_speed * (self._time - track.floor_seen) + 3.0 * np.sqrt(var + track.floor_seen_var)
            agrees[floor] = (d2 <= c.floor_gate ** 2) & (np.linalg.norm(obs.position[d] - track.floor_seen_at, axis=1)
                                                         <= reach)
            # A box that fits the prediction this well is the track's person even where its floor position does
            # not: that was measured on someone in front (not detected this frame) or the track's was.
            override = iou[floor] >= c.box_override_iou
            cost[floor] = np.where(agrees[floor], nll + c.iou_weight * (1.0 - iou[floor]),
                                   np.where(override, c.floor_gate ** 2 * (1.5 - iou[floor]), _BLOCKED))
        image = ~floor
        if image.any():
            pred_h = track.predicted_box()[3] - track.predicted_box()[1]
            size = np.abs(np.log(np.maximum(obs.boxes[dets[image], 3] - obs.boxes[dets[image], 1], 1.0) / pred_h))
            cost[image] = np.where((iou[image] >= c.minimum_iou_threshold) & (size <= np.log(c.max_box_growth)),
                                   c.floor_gate ** 2 * (1.0 - iou[image]), _BLOCKED)
        if math.isfinite(track.height):
            h, hv = obs.height[dets], obs.height_var[dets]
            known = np.isfinite(h)
            z2 = np.zeros(len(dets))
            z2[known] = (h[known] - track.height) ** 2 / (hv[known] + track.height_var)
            cost = np.where(z2 <= c.height_gate ** 2, cost + z2, _BLOCKED)
        if track.appearance is not None and obs.appearance is not None:
            a = obs.appearance[dets]
            known = np.isfinite(a).all(axis=1)
            dist = np.zeros(len(dets))
            dist[known] = 1.0 - a[known] @ track.appearance
            cost = np.where(dist <= c.appearance_gate, cost + c.appearance_weight * dist / c.appearance_gate, _BLOCKED)
        return np.minimum(cost, _BLOCKED), agrees


__all__ = ["FloorTracker", "FloorTrackerConfig"]
