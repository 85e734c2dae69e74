"""Recall of the depth people detector by distance, on a recording with ground truth.

``python -m reidstream.pipeline.eval.detector REC [KEY=VALUE ...]`` runs
:class:`~reidstream.pipeline.detect.depth_people.DepthPeopleDetector` (``KEY=VALUE``: its settings, the
``detector.depth`` section of a stream config, e.g. ``background_s=0``) on every frame of the recording ``REC``
(``reid-synth sequence``, ``reid-record``) and prints, for all people and per distance band, the share found
and the false detections. A person is *found* in a frame when a detection overlaps their ground-truth box at
IoU >= 0.5; a detection is *false* when it overlaps no person's box at IoU 0.3, and a *duplicate* when it
overlaps (IoU >= 0.5) a person whom a better-overlapping detection already found (one person, two boxes: the
tracker then starts a second track on them, whose identity the first one blocks). This is the detector alone:
``reid-score`` scores what the whole pipeline (tracker, gallery) makes of it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

import numpy as np

from reidstream.pipeline.config import load_config, parse_args_with_overrides
from reidstream.pipeline.detect.depth_people import DepthPeopleConfig, DepthPeopleDetector
from reidstream.pipeline.sources.base import SourceError
from reidstream.pipeline.sources.recording import RecordingSource
from reidstream.pipeline.track.motion import box_iou

BANDS = ((0.0, 5.0), (5.0, 7.0), (7.0, 8.0), (8.0, 100.0))
"""Distance bands (m) reported."""


@dataclass
class DetectorRecall:
    """Per ground-truth box: its distance and whether it was found; and the false detections."""

    distance: list[float] = field(default_factory=list)
    found: list[bool] = field(default_factory=list)
    detections: int = 0
    false: int = 0
    duplicates: int = 0

    def recall(self, lo: float = 0.0, hi: float = np.inf) -> tuple[int, int]:
        """``(found, people)`` over the boxes at ``lo`` <= distance < ``hi``."""
        d, f = np.asarray(self.distance), np.asarray(self.found, bool)
        m = (d >= lo) & (d < hi)
        return int(f[m].sum()), int(m.sum())


def evaluate(recording: str, config: DepthPeopleConfig) -> DetectorRecall:
    """Runs the detector with ``config`` on every frame of ``recording`` (see the module docstring)."""
    detector = DepthPeopleDetector.from_config(config)
    out = DetectorRecall()
    for item in RecordingSource(recording):
        boxes = np.asarray(detector.detect(item.frame).boxes, np.float64).reshape(-1, 4)
        gt = np.array([a.box for a in item.annotations], np.float64).reshape(-1, 4)
        found, false, duplicates = match_frame(gt, boxes)
        out.distance += [float(a.distance) for a in item.annotations]
        out.found += found.tolist()
        out.detections += len(boxes)
        out.false += false
        out.duplicates += duplicates
    return out


def match_frame(gt: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, int, int]:
    """One frame's ground-truth boxes against its detections (``N x 4`` and ``K x 4`` xyxy): per person whether
    found, the false detections and the duplicates (see the module docstring)."""
    m = box_iou(gt, boxes) if len(gt) and len(boxes) else np.zeros((len(gt), len(boxes)))
    found = (m >= 0.5).any(axis=1)
    false = int((m < 0.3).all(axis=0).sum())
    best = np.zeros(len(boxes), bool)  # each found person's best-overlapping box
    if len(gt) and len(boxes):
        best[m.argmax(axis=1)[found]] = True
    return found, false, int(((m >= 0.5).any(axis=0) & ~best).sum())


def format_report(r: DetectorRecall) -> str:
    """The printed table: all people, then each band of :data:`BANDS`."""
    lines = ["people               found / boxes   recall"]
    for name, (lo, hi) in [("all", (0.0, np.inf))] + [(f"{lo:g}-{hi:g} m" if hi < 100 else f">= {lo:g} m", (lo, hi))
                                                        for lo, hi in BANDS]:
        f, n = r.recall(lo, hi)
        lines.append(f"{name:18s} {f:7d} / {n:<7d} {100 * f / n:6.1f} %" if n else f"{name:18s}       - / 0")
    lines.append(f"detections {r.detections}, false (IoU < 0.3 with every person) {r.false}, "
                 f"duplicates (a person found twice) {r.duplicates}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reidstream.pipeline.eval.detector",
                                description=__doc__.split("\n\n")[1])
    p.add_argument("recording", help="a recording directory with ground truth")
    args = parse_args_with_overrides(p, argv)
    try:
        config = load_config(DepthPeopleConfig, None, args.overrides)
        print(format_report(evaluate(args.recording, config)))
    except (ValueError, OSError, SourceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
