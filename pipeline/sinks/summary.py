"""Run statistics: throughput, per-stage latency percentiles, identity and detector counts."""

from __future__ import annotations

import time
from array import array
from collections import Counter
from typing import Callable

import numpy as np

from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.sinks.fanout import SinkBase

PERCENTILES = (50, 90, 99)


class SummarySink(SinkBase):
    """Accumulates what a run did; :meth:`summary` gives a dict, :func:`format_summary` the end-of-run table.

    Latencies are kept per stage (8 bytes per frame and stage) so percentiles are exact. Wall-clock
    FPS is measured between the first and the last result received (``frames - 1`` intervals).

    Args:
        clock: Time source (seconds).
        name: Sink name in reports.
    """

    name = "summary"

    def __init__(self, *, clock: Callable[[], float] = time.perf_counter, name: str | None = None) -> None:
        self.clock = clock
        self.name = name or type(self).name
        self.frames = 0
        self.frames_with_ground_truth = 0
        self.detections = 0
        self.latency: dict[str, array] = {}
        self.events: Counter[str] = Counter()
        self.detectors: Counter[str] = Counter()
        self.identities_seen: set[str] = set()
        self.identities_matched: set[str] = set()
        self._first: float | None = None
        self._last: float | None = None

    def _write(self, result: FrameResult) -> None:
        now = self.clock()
        if self._first is None:
            self._first = now
        self._last = now
        self.frames += 1
        self.frames_with_ground_truth += bool(result.has_ground_truth)
        self.detections += len(result.detections)
        self.detectors[result.detector or "none"] += 1
        for stage, ms in result.latency_ms.items():
            self.latency.setdefault(str(stage), array("d")).append(float(ms))
        for e in result.events:
            self.events[e.kind] += 1
            self.identities_seen.add(e.identity)
            if e.kind == "matched":
                self.identities_matched.add(e.identity)
        self.identities_seen.update(i for i in result.identities if i)

    def summary(self) -> dict:
        """The statistics so far as a JSON-able dict.

        Keys: ``frames``, ``frames_with_ground_truth``, ``detections``, ``wall_s``, ``fps`` (None
        before two frames), ``latency_ms`` (stage -> ``n``, ``mean``, ``p50``, ``p90``, ``p99``,
        ``max``), ``identities`` (``created``, ``matched`` (events), ``matched_identities``
        (distinct), ``expired``, ``seen``) and ``detectors`` (name -> frames).
        """
        wall = (self._last - self._first) if self.frames else 0.0
        fps = (self.frames - 1) / wall if self.frames >= 2 and wall > 0 else None
        lat = {}
        for stage, values in self.latency.items():
            v = np.frombuffer(values, dtype=np.float64) if len(values) else np.zeros(0)
            if not len(v):
                continue
            p = np.percentile(v, PERCENTILES)
            lat[stage] = {"n": int(v.size), "mean": float(v.mean()),
                          **{f"p{q}": float(x) for q, x in zip(PERCENTILES, p)}, "max": float(v.max())}
        return {"frames": self.frames, "frames_with_ground_truth": self.frames_with_ground_truth,
                "detections": self.detections, "wall_s": float(wall), "fps": fps, "latency_ms": lat,
                "identities": {"created": self.events["new"], "matched": self.events["matched"],
                               "matched_identities": len(self.identities_matched),
                               "expired": self.events["expired"], "seen": len(self.identities_seen)},
                "detectors": dict(self.detectors.most_common())}


def format_summary(d: dict) -> str:
    """The end-of-run table of a :meth:`SummarySink.summary` dict."""
    fps = f"{d['fps']:.1f} FPS" if d.get("fps") else "FPS n/a"
    lines = [f"frames      {d['frames']} in {d['wall_s']:.1f} s ({fps}), {d['detections']} detections"
             + (f", {d['frames_with_ground_truth']} with ground truth" if d.get("frames_with_ground_truth") else "")]
    lat = d.get("latency_ms") or {}
    if lat:
        width = max(12, *(len(s) + 2 for s in lat))
        cols = ("mean", *(f"p{q}" for q in PERCENTILES), "max")
        lines.append("latency ms".ljust(width) + "".join(c.rjust(9) for c in cols))
        for stage, s in lat.items():
            lines.append(f"  {stage}".ljust(width) + "".join(f"{s[c]:9.1f}" for c in cols))
    ids = d["identities"]
    lines.append(f"identities  {ids['created']} created, {ids['matched']} matches of {ids['matched_identities']} "
                 f"identities, {ids['expired']} expired ({ids['seen']} seen)")
    if d.get("detectors"):
        lines.append("detectors   " + ", ".join(f"{k} {v} frames" for k, v in d["detectors"].items()))
    if d.get("frames_skipped"):
        lines.append(f"skipped     {d['frames_skipped']} frames of the source (missing or corrupt image files)")
    if "frames_dropped" in d:
        dropped = d["frames_dropped"]
        why = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in dropped.items() if v)
        read = d.get("frames_read")
        lines.append(f"source      {read if read is not None else '?'} frames read, {d.get('frames_processed', '?')} "
                     f"processed, {sum(dropped.values())} dropped" + (f" ({why})" if why else ""))
    return "\n".join(lines)


__all__ = ["PERCENTILES", "SummarySink", "format_summary"]
