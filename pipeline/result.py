"""What the live pipeline produces per frame: identity events and a :class:`FrameResult` for the sinks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from reidstream.pipeline.types import Detections, Frame, Match, PersonAnnotation

EVENT_KINDS = ("pending", "new", "matched", "expired")


@dataclass(frozen=True)
class Event:
    """One identity decision, as written to the JSON-lines event log.

    Attributes:
        kind: ``"pending"`` (a new track collects evidence; ``identity`` is empty until the log is
            relabelled), ``"new"`` (a track started a new identity), ``"matched"`` (a track was assigned,
            or switched to, a known identity) or ``"expired"`` (an identity left the gallery, or was merged
            into another).
        frame: Frame index.
        time: Frame timestamp in seconds.
        camera: Camera id.
        identity: Long-term identity.
        track: Short-term track id (-1 for ``expired``).
        modality: Modality whose embedding decided the match (``""`` for ``expired``).
        space: Embedding space of that decision (``""`` for ``expired``).
        box: ``x1, y1, x2, y2`` of the track in this frame (empty for ``expired``).
        distance: Cosine distance behind the decision, for rules that decide on one distance (the evidence
            gallery reports 0 and gives ``evidence`` instead; 0 for ``expired``).
        evidence: Fused log-likelihood ratio behind the decision (same person vs not).
        since: First frame of the track (-1 for ``expired``): the decision covers its frames from there.
    """

    kind: str
    frame: int
    time: float
    camera: str
    identity: str
    track: int = -1
    modality: str = ""
    space: str = ""
    box: tuple[float, ...] = ()
    distance: float = 0.0
    evidence: float = 0.0
    since: int = -1

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"Event.kind: expected one of {EVENT_KINDS}, got {self.kind!r}")
        if len(self.box) not in (0, 4):
            raise ValueError(f"Event.box: expected 4 numbers or none, got {self.box!r}")
        if not math.isfinite(self.distance) or self.distance < 0:
            raise ValueError(f"Event.distance: expected a finite number >= 0, got {self.distance!r}")
        object.__setattr__(self, "box", tuple(round(float(v), 1) for v in self.box))

    def to_dict(self) -> dict:
        """JSON-able form (one line of the event log)."""
        return {"kind": self.kind, "frame": self.frame, "time": round(self.time, 4), "camera": self.camera,
                "track": self.track, "identity": self.identity, "modality": self.modality, "space": self.space,
                "box": list(self.box), "distance": round(self.distance, 4), "evidence": round(self.evidence, 3),
                "since": self.since}


@dataclass(frozen=True, eq=False)
class FrameResult:
    """Everything the pipeline decided about one frame, handed to every sink.

    Attributes:
        frame: The input frame.
        detections: Tracked people (``track_ids`` set), boxes in the frame's colour pixel grid.
        identities: Long-term identity per detection (aligned with ``detections``; ``""`` if undecided).
        matches: The gallery's decisions, one per track.
        events: New / matched / expired events of this frame.
        detector: Name of the detector that ran (``"yolo"``, ``"depth"``, ...).
        latency_ms: Stage name -> milliseconds spent on this frame.
        annotations: Ground truth of the frame when the source has it.
        has_ground_truth: Whether ``annotations`` is ground truth.
        lit: Whether the colour image was usable (bright and clean enough) for detection and
            embedding; None when unknown (no light measurement).
        resolved: Track id -> identity for tracks the gallery decided in this frame after they left
            the view (``""``: dropped undecided, too short); see :class:`~reidstream.pipeline.sinks.relabel.Relabel`.
        cuts: Tracks the gallery cut in this frame (the tracker had carried them onto another person): new track
            id -> ``(track id it was cut from, capture time)``; the frames after that time are the new track's
            (the logs move them to it, :class:`~reidstream.pipeline.sinks.relabel.Relabel`).
    """

    frame: Frame
    detections: Detections
    identities: tuple[str, ...]
    matches: tuple[Match, ...] = ()
    events: tuple[Event, ...] = ()
    detector: str = ""
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    annotations: tuple[PersonAnnotation, ...] = ()
    has_ground_truth: bool = False
    lit: bool | None = None
    resolved: Mapping[int, str] = field(default_factory=dict)
    cuts: Mapping[int, tuple[int, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.identities) != len(self.detections):
            raise ValueError(f"FrameResult.identities: expected {len(self.detections)} (one per detection), got "
                             f"{len(self.identities)}")
        object.__setattr__(self, "identities", tuple(self.identities))
        object.__setattr__(self, "matches", tuple(self.matches))
        object.__setattr__(self, "events", tuple(self.events))
        object.__setattr__(self, "latency_ms", dict(self.latency_ms))

    @property
    def index(self) -> int:
        return self.frame.index

    def boxes_by_identity(self) -> dict[str, np.ndarray]:
        """Identity -> its box in this frame."""
        return {i: self.detections.boxes[k] for k, i in enumerate(self.identities) if i}
