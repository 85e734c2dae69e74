"""Short-term tracking: ByteTrack (the ``trackers`` package by Roboflow) over the detections of one camera.

:meth:`Tracker.update` returns the *tracked subset* of a frame's detections, in
their input order, with their own boxes and scores and a track id >= 0 each.
ByteTrack leaves out what it has not confirmed:

* a new person gets an id only once detected in ``minimum_consecutive_frames``
  consecutive frames (so the first frame of a track, and a one-frame false
  positive, are dropped);
* a detection below ``high_conf_det_threshold`` only continues an existing track
  (ByteTrack's second association stage), it never starts one; below
  ``track_activation_threshold`` a high detection does not start a track either.

:attr:`Tracker.last_index` holds the input indices of the returned rows (to pick
the same rows of anything aligned with the detections, e.g. body measures).

Ids are unique per tracker (from 0) until :meth:`Tracker.reset`. A track that
misses detections keeps its id for ``lost_track_buffer`` frames at 30 fps (one
second by default, whatever the frame rate). The defaults follow the ByteTrack
paper (high threshold 0.5, new tracks from 0.6, IoU >= 0.2, one second of
buffer), which suits people walking at 15-30 fps.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from reidstream.pipeline.config import ConfigModel
from reidstream.pipeline.types import Detections


class TrackerConfig(ConfigModel):
    """Settings of :class:`Tracker`; the names are those of ``trackers.ByteTrackTracker``."""

    frame_rate: float = Field(30.0, gt=0.0)
    """Nominal frame rate of the camera (scales the Kalman motion model and the lost-track buffer)."""
    lost_track_buffer: int = Field(30, ge=0)
    """How long a track survives without detections, in frames at 30 fps (30 = one second)."""
    minimum_consecutive_frames: int = Field(2, ge=1)
    """Consecutive detections before a new track gets an id."""
    track_activation_threshold: float = Field(0.6, ge=0.0, le=1.0)
    """Lowest score that starts a new track."""
    high_conf_det_threshold: float = Field(0.5, ge=0.0, le=1.0)
    """Score splitting the first (high) and second (low) association stages."""
    minimum_iou_threshold: float = Field(0.2, gt=0.0, le=1.0)
    """Lowest IoU between a track's predicted box and a detection to associate them."""


class Tracker:
    """ByteTrack over :class:`~reidstream.pipeline.types.Detections` (see the module docstring).

    Args:
        frame_rate: Nominal camera frame rate.
        lost_track_buffer: Lifetime of a lost track, in frames at 30 fps (scaled to ``frame_rate``).
        minimum_consecutive_frames: Consecutive detections before a track gets an id.
        track_activation_threshold: Lowest score that starts a track.
        high_conf_det_threshold: High/low split of the two association stages.
        minimum_iou_threshold: Lowest IoU for an association.

    Raises:
        ImportError: the ``trackers`` package is not installed.

    Attributes:
        last_index: Input indices (into the last :meth:`update`'s detections) of the rows it returned.
    """

    def __init__(self, frame_rate: float = 30.0, lost_track_buffer: int = 30, minimum_consecutive_frames: int = 2,
                 track_activation_threshold: float = 0.6, high_conf_det_threshold: float = 0.5,
                 minimum_iou_threshold: float = 0.2) -> None:
        self.config = TrackerConfig(frame_rate=float(frame_rate), lost_track_buffer=int(lost_track_buffer),
                                    minimum_consecutive_frames=int(minimum_consecutive_frames),
                                    track_activation_threshold=float(track_activation_threshold),
                                    high_conf_det_threshold=float(high_conf_det_threshold),
                                    minimum_iou_threshold=float(minimum_iou_threshold))
        try:
            import supervision
            from trackers import ByteTrackTracker
        except ImportError as e:
            raise ImportError("Tracker needs the trackers package: pip install trackers") from e
        self._sv = supervision
        self._tracker = ByteTrackTracker(**self.config.model_dump())
        self.last_index = np.zeros(0, np.int64)

    @classmethod
    def from_config(cls, cfg: TrackerConfig) -> "Tracker":
        """A tracker with the settings of ``cfg``."""
        return cls(**cfg.model_dump())

    def update(self, detections: Detections, timestamp: float | None = None, measures: object | None = None,
               appearance: np.ndarray | None = None) -> Detections:
        """Associates one frame's detections with the tracks; returns the tracked subset (ids >= 0), in input order.

        Args:
            detections: All detections of the frame (give every frame, also empty ones: a missed
                frame is how tracks age).
            timestamp: Capture time in seconds (``frame.timestamp``); with it the motion model and
                the lost-track buffer follow real time (dropped frames, varying fps). Use it for every
                frame or for none; times must not decrease.
            measures: Ignored (ByteTrack associates image boxes only); accepted so that every tracker
                is called alike.
            appearance: Ignored, as ``measures``.

        Returns:
            The tracked detections; :attr:`last_index` holds their indices in ``detections``.
        """
        n = len(detections)
        sv = self._sv.Detections(xyxy=detections.boxes.astype(np.float32).reshape(-1, 4),
                                 confidence=detections.scores.astype(np.float32),
                                 class_id=np.zeros(n, np.int64), data={"index": np.arange(n)})
        out = self._tracker.update(sv, timestamp=timestamp)
        ids = np.asarray(out.tracker_id if out.tracker_id is not None else [], np.int64)
        index = np.asarray(out.data.get("index", np.zeros(0, np.int64)), np.int64) if len(out) else np.zeros(0, np.int64)
        tracked = np.full(n, -1, np.int64)
        tracked[index] = ids
        keep = np.flatnonzero(tracked >= 0)
        self.last_index = keep
        return Detections(detections.boxes[keep], detections.scores[keep], tracked[keep], detections.modality,
                          detections.frame_index)

    def reset(self) -> None:
        """Drops every track and restarts ids from 0 (a new video or scene)."""
        self._tracker.reset()
        self.last_index = np.zeros(0, np.int64)


__all__ = ["Tracker", "TrackerConfig"]
