"""Prometheus metrics of a run: :class:`MetricsSink` fills a per-run registry from each :class:`FrameResult`.

Every metric is labelled by ``camera`` (``result.frame.camera_id``), so one scrape target can serve the
several cameras of a multi-camera run, and the workers of several processes can be told apart:

==========================================  =========  ==================================================
metric                                      type       labels / meaning
==========================================  =========  ==================================================
``reid_frames_read_total``                  counter    frames read from the source (``frame_counts``)
``reid_frames_processed_total``             counter    frames through the whole pipeline
``reid_frames_dropped_total``               counter    ``reason``: buffer_full, realtime, at_stop, unreadable
``reid_stage_latency_seconds``              histogram  ``stage``: detect, body, track, crop, embed, gallery
``reid_people_detected_total``              counter    tracked detections, summed over frames
``reid_people_in_view``                     gauge      tracked detections in the camera's last frame
``reid_events_total``                       counter    ``kind``: pending, new, matched, expired
``reid_gallery_identities``                 gauge      identities in the gallery
``reid_gallery_visits``                     gauge      stored visits (the gallery's size in memory)
``reid_last_frame_timestamp_seconds``       gauge      wall-clock time (Unix) of the last processed frame
``reid_redis_lag_seconds``                  gauge      shared gallery: how far behind the shared state
``reid_redis_buffered_mutations``           gauge      shared gallery: local changes not yet written
==========================================  =========  ==================================================

The two ``reid_redis_*`` gauges are a hook for a gallery shared through Redis: they stay unset (no sample)
until the gallery has a ``sync_status()`` method returning ``(lag_seconds, buffered_mutations)``.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping

from reidstream.pipeline.result import EVENT_KINDS, FrameResult
from reidstream.pipeline.sinks.fanout import SinkBase

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Histogram buckets of the per-stage latency (seconds): a gallery lookup (< 1 ms) to a slow embed."""
DROP_REASONS = ("buffer_full", "realtime", "at_stop", "unreadable")
PREFIX = "reid"


class MetricsSink(SinkBase):
    """Updates a Prometheus registry per frame (see the module docstring for the metrics).

    Args:
        registry: The run's :class:`~prometheus_client.CollectorRegistry` (never the global one).
        frame_counts: ``frame_counts(camera) -> {"read": int | None, "dropped": {reason: int}}``, what became
            of that camera's frames so far (:func:`~reidstream.pipeline.app.stream.frame_counts`); None: the
            read and dropped counters stay at 0. Polled per frame and once more at :meth:`close`.
        gallery: The gallery: ``len(gallery)`` identities, ``len(gallery.visits)`` visits where it has them,
            and ``gallery.sync_status() -> (lag_seconds, buffered_mutations)`` where it is shared (Redis).
        clock: Wall-clock time source (Unix seconds) for ``reid_last_frame_timestamp_seconds``.
        name: Sink name in reports.
    """

    name = "metrics"

    def __init__(self, registry, *, frame_counts: Callable[[str], Mapping | None] | None = None,
                 gallery: object | None = None, clock: Callable[[], float] = time.time,
                 name: str | None = None) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.registry = registry
        self.frame_counts = frame_counts
        self.gallery = gallery
        self.clock = clock
        self.name = name or type(self).name
        self._seen: dict[tuple[str, str], int] = {}
        self._cameras: set[str] = set()

        def metric(kind, name: str, doc: str, labels: tuple[str, ...] = (), **kw):
            return kind(f"{PREFIX}_{name}", doc, ("camera", *labels), registry=registry, **kw)

        self.read = metric(Counter, "frames_read", "Frames read from the source.")
        self.processed = metric(Counter, "frames_processed", "Frames through the whole pipeline.")
        self.dropped = metric(Counter, "frames_dropped", "Frames read but not processed, by reason.", ("reason",))
        self.latency = metric(Histogram, "stage_latency_seconds", "Time spent per frame in each pipeline stage.",
                              ("stage",), buckets=LATENCY_BUCKETS_S)
        self.people = metric(Counter, "people_detected", "Tracked people detected, summed over frames.")
        self.in_view = metric(Gauge, "people_in_view", "Tracked people detected in the last frame.")
        self.events = metric(Counter, "events", "Identity decisions, by kind.", ("kind",))
        self.identities = metric(Gauge, "gallery_identities", "Identities in the gallery.")
        self.visits = metric(Gauge, "gallery_visits", "Visits stored in the gallery.")
        self.last_frame = metric(Gauge, "last_frame_timestamp_seconds", "Unix time of the last processed frame.")
        self.redis_lag = metric(Gauge, "redis_lag_seconds", "Shared (Redis) gallery: seconds behind the shared "
                                "state; unset until the gallery reports it.")
        self.redis_buffered = metric(Gauge, "redis_buffered_mutations", "Shared (Redis) gallery: local changes "
                                     "not yet written; unset until the gallery reports it.")

    def _write(self, result: FrameResult) -> None:
        camera = result.frame.camera_id
        if camera not in self._cameras:  # every series of the camera exists from its first frame, at 0
            self._cameras.add(camera)
            self.read.labels(camera)
            for reason in DROP_REASONS:
                self.dropped.labels(camera, reason)
            for kind in EVENT_KINDS:
                self.events.labels(camera, kind)
        self.processed.labels(camera).inc()
        self.last_frame.labels(camera).set(self.clock())
        for stage, ms in result.latency_ms.items():
            self.latency.labels(camera, str(stage)).observe(max(0.0, float(ms)) / 1000.0)
        n = len(result.detections)
        self.people.labels(camera).inc(n)
        self.in_view.labels(camera).set(n)
        for e in result.events:
            self.events.labels(camera, e.kind).inc()
        self._gallery(camera)
        self._counts(camera)

    def _gallery(self, camera: str) -> None:
        g = self.gallery
        if g is None:
            return
        self.identities.labels(camera).set(len(g))
        visits = getattr(g, "visits", None)
        if visits is not None:
            self.visits.labels(camera).set(len(visits))
        status = getattr(g, "sync_status", None)
        if callable(status):
            lag_s, buffered = status()
            self.redis_lag.labels(camera).set(float(lag_s))
            self.redis_buffered.labels(camera).set(int(buffered))

    def _counts(self, camera: str) -> None:
        """Brings the read / dropped counters up to the source's running totals (counters only move up)."""
        counts = self.frame_counts(camera) if self.frame_counts is not None else None
        if not counts:
            return
        totals = {("read", ""): counts.get("read")}
        totals.update({("dropped", str(r)): v for r, v in (counts.get("dropped") or {}).items()})
        for (what, reason), total in totals.items():
            if total is None:
                continue
            delta = int(total) - self._seen.get((camera, f"{what}:{reason}"), 0)
            if delta > 0:
                (self.read.labels(camera) if what == "read" else self.dropped.labels(camera, reason)).inc(delta)
                self._seen[(camera, f"{what}:{reason}")] = int(total)

    def _close(self) -> None:
        for camera in sorted(self._cameras):  # the frames dropped when the source stopped (at_stop)
            self._counts(camera)


def registry_health(registry, *, clock: Callable[[], float] = time.time) -> dict:
    """What ``/healthz`` reports, read back from a registry a :class:`MetricsSink` fills.

    Returns:
        ``frames_processed`` (all cameras), ``last_frame_age_s`` (seconds since the last frame of the camera
        that has gone longest without one, so that one stalled camera of several shows; None before the first
        frame) and ``cameras``: camera -> its ``frames_processed`` and ``last_frame_age_s``.
    """
    cams: dict[str, dict] = {}
    for family in registry.collect():
        for s in family.samples:
            camera = s.labels.get("camera")
            if camera is None:
                continue
            if s.name == f"{PREFIX}_frames_processed_total":
                cams.setdefault(camera, {})["frames_processed"] = int(s.value)
            elif s.name == f"{PREFIX}_last_frame_timestamp_seconds":
                cams.setdefault(camera, {})["last_frame_age_s"] = max(0.0, clock() - s.value)
    ages = [c["last_frame_age_s"] for c in cams.values() if "last_frame_age_s" in c]
    return {"frames_processed": sum(c.get("frames_processed", 0) for c in cams.values()),
            "last_frame_age_s": max(ages) if ages else None, "cameras": cams}
