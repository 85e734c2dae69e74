"""SummarySink: counts, wall-clock FPS and latency percentiles on known values."""

from __future__ import annotations

import numpy as np

from reidstream.pipeline.result import Event
from reidstream.pipeline.sinks import SummarySink, format_summary


def test_summary_of_known_latencies_and_events(make_result):
    ticks = iter(np.arange(0.0, 100.0, 0.5))
    sink = SummarySink(clock=lambda: float(next(ticks)))
    for i in range(101):
        events = None
        if i == 0:
            events = (Event("new", 0, 0.0, "cam0", "id-0001", 5), Event("new", 0, 0.0, "cam0", "id-0002", 9))
        elif i == 100:
            events = (Event("expired", 100, 9.0, "cam0", "id-0002"),)
        sink(make_result(i, latency={"detect": float(i), "embed": 2.0}, detector="depth" if i % 4 else "yolo",
                         events=events, has_ground_truth=i < 10))
    sink.close()
    d = sink.summary()
    assert d["frames"] == 101 and d["frames_with_ground_truth"] == 10 and d["detections"] == 202
    assert d["wall_s"] == 50.0 and d["fps"] == 2.0
    det = d["latency_ms"]["detect"]
    assert (det["n"], det["p50"], det["p90"], det["p99"], det["max"], det["mean"]) == (101, 50.0, 90.0, 99.0, 100.0, 50.0)
    assert d["latency_ms"]["embed"]["p99"] == 2.0
    assert d["identities"] == {"created": 2, "matched": 2 * 99, "matched_identities": 2, "expired": 1, "seen": 2}
    assert d["detectors"] == {"depth": 75, "yolo": 26}
    text = format_summary(d)
    assert "101 in 50.0 s (2.0 FPS)" in text
    assert "detect" in text and "99.0" in text and "2 created" in text and "1 expired" in text
    assert "depth 75 frames" in text


def test_empty_summary_formats():
    d = SummarySink().summary()
    assert d["frames"] == 0 and d["fps"] is None and d["latency_ms"] == {}
    assert "FPS n/a" in format_summary(d)
