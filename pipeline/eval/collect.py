"""Track evidence with ground truth, cut by the live pipeline itself: the data of calibration and diagnosis.

:func:`collect_tracks` replays a recording that has ground truth through the pipeline's own stages
(detector, body meter, tracker, crops, embedders, cues) and, instead of deciding identities, keeps per
track two :class:`~reidstream.pipeline.gallery.evidence.TrackEvidence`: its first ``pending_s`` (what the
gallery decides on) and its whole length (what the gallery stores as the visit). Each track is labelled
with the ground-truth person its boxes overlap most (IoU >= 0.5, optimal per frame) and the share of its
frames that person holds (purity).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from reidstream.pipeline.gallery.cues import TrackCues
from reidstream.pipeline.gallery.evidence import TrackEvidence, Visit, accumulate
from reidstream.pipeline.types import Embeddings


@dataclass
class TrackRecord:
    """One track of a replayed recording, with its ground truth."""

    sequence: str
    track: int
    start: float
    end: float
    early: Visit
    full: Visit
    person: int = -1
    purity: float = 0.0
    frames: int = 0


class EvidenceRecorder:
    """Stands in for the gallery in :class:`~reidstream.pipeline.runner.Pipeline`: records, never decides."""

    def __init__(self, pending_s: float = 1.0) -> None:
        self.pending_s = pending_s
        self.early: dict[int, TrackEvidence] = {}
        self.full: dict[int, TrackEvidence] = {}
        self.last_expired: list[str] = []
        self.last_resolved: dict[int, str] = {}

    def match(self, observations: Sequence[Embeddings], timestamp: float, cues: TrackCues | None = None, *,
              camera: str | None = None) -> list:
        accumulate(observations, cues, timestamp, lambda tid: self._stores(tid, timestamp))
        return []

    def _stores(self, tid: int, timestamp: float) -> list[TrackEvidence]:
        if tid not in self.full:
            self.full[tid] = TrackEvidence(timestamp)
            self.early[tid] = TrackEvidence(timestamp)
        out = [self.full[tid]]
        if timestamp - self.full[tid].first_seen < self.pending_s:
            out.append(self.early[tid])
        return out


def _label(result, votes: dict[int, Counter]) -> None:
    from scipy.optimize import linear_sum_assignment
    from trackers.eval import box_iou

    gt = [a for a in result.annotations if a.visible >= 0.3]
    dets = result.detections
    if not gt or not len(dets):
        for t in dets.track_ids.tolist():
            votes.setdefault(int(t), Counter())[-1] += 1
        return
    iou = box_iou(np.array([a.box for a in gt], float), dets.boxes.astype(float))
    rows, cols = linear_sum_assignment(-iou)
    person = {int(c): gt[r].identity for r, c in zip(rows, cols) if iou[r, c] >= 0.5}
    for j, t in enumerate(dets.track_ids.tolist()):
        votes.setdefault(int(t), Counter())[person.get(j, -1)] += 1


def collect_tracks(recording: str | Path, pipeline, *, name: str | None = None, time_offset: float = 0.0,
                   pending_s: float = 1.0, min_frames: int = 3,
                   progress: Callable[[str], None] | None = None) -> list[TrackRecord]:
    """Replays ``recording`` through ``pipeline`` (a :class:`~reidstream.pipeline.runner.Pipeline` whose gallery
    is replaced here by an :class:`EvidenceRecorder`) and returns its tracks with ground truth.

    Args:
        recording: A recording with ground truth.
        pipeline: The stages; a fresh one per recording (trackers keep state).
        name: Sequence name of the records (recordings of one name are one timeline: pairs form across them).
        time_offset: Added to the records' times (a later part of a timeline).
        pending_s: Length of the early window (the gallery's decision window).
        min_frames: Shorter tracks are left out.
        progress: Called with a line every 100 frames.

    Raises:
        ValueError: the recording has no ground truth (naming it).
    """
    from reidstream.pipeline.sources.recording import RecordingSource

    recorder = EvidenceRecorder(pending_s)
    pipeline.gallery = recorder
    votes: dict[int, Counter] = {}
    name = name or Path(recording).name
    with RecordingSource(recording) as source:
        for k, item in enumerate(source):
            if not item.has_ground_truth:
                raise ValueError(f"{recording}: frame {item.frame.index} has no ground truth; calibration needs a "
                                 f"labelled recording (reid-synth sequence, or a recording with annotations)")
            result = pipeline.process(item)
            _label(result, votes)
            if progress is not None and k % 100 == 0:
                progress(f"{name}: frame {k}, {len(recorder.full)} tracks")
    out = []
    for tid, full in recorder.full.items():
        if full.frames < min_frames:
            continue
        v = votes.get(tid, Counter())
        (person, n), total = (v.most_common(1)[0] if v else (-1, 0)), sum(v.values())
        out.append(TrackRecord(name, tid, full.first_seen + time_offset, full.last_seen + time_offset,
                               recorder.early[tid].summary(),
                               full.summary(), int(person), n / max(total, 1), full.frames))
    return out


__all__ = ["EvidenceRecorder", "TrackRecord", "collect_tracks"]
