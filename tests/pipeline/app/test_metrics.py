"""``reid-stream --metrics``: a real run scraped over loopback, :class:`MetricsSink` on hand-made results, and the
endpoint's contract (bad address, port in use, stale health). Real prometheus_client, real sockets."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from reidstream.pipeline.app.cli import EXIT_ERROR, stream_main
from reidstream.pipeline.app.config import StreamConfig
from reidstream.pipeline.app.metrics import MetricsServer, MetricsServerError, parse_address
from reidstream.pipeline.config import ConfigError, load_config
from reidstream.pipeline.gallery.bench import build as build_gallery
from reidstream.pipeline.result import Event, FrameResult
from reidstream.pipeline.sinks.metrics import MetricsSink, registry_health
from reidstream.pipeline.types import Detections, Frame

STAGES = ("detect", "body", "track", "crop", "embed", "gallery")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value of a Prometheus text exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def value(scrape: dict, name: str, **labels) -> float:
    return scrape[(name, tuple(sorted(labels.items())))]


def test_a_real_run_is_scraped_while_it_runs(tmp_path):
    """The simulated camera at real time (30 fps): two scrapes a second apart see the counters move."""
    exe = shutil.which("reid-stream")
    assert exe, "reid-stream is not installed: pip install -e ."
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([exe, "--camera", "sim", "--max-frames", "240", "--metrics", f"127.0.0.1:{port}",
                             "source.realtime=true"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, health = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                code, body = get(f"{base}/healthz", timeout=2)
            except OSError:  # not listening yet (the bundle loads first)
                time.sleep(0.2)
                continue
            health = (code, json.loads(body))
            if health[1]["frames_processed"] >= 5:
                break
            time.sleep(0.2)
        assert health is not None, f"the endpoint never answered; stderr:\n{proc.communicate(timeout=60)[1]}"
        code, body = health
        assert code == 200 and body["status"] == "ok" and body["frames_processed"] >= 5
        assert 0 <= body["seconds_since_last_frame"] < body["stale_after_s"]

        first = samples(get(f"{base}/metrics")[1])
        time.sleep(1.5)
        second = samples(get(f"{base}/metrics")[1])
        camera = "sim0"
        for name in ("reid_frames_processed_total", "reid_frames_read_total"):
            a, b = value(first, name, camera=camera), value(second, name, camera=camera)
            assert b > a > 0, f"{name} did not move between scrapes: {a} -> {b}"
        assert value(second, "reid_frames_read_total", camera=camera) >= value(
            second, "reid_frames_processed_total", camera=camera)
        for stage in STAGES:
            count = value(second, "reid_stage_latency_seconds_count", camera=camera, stage=stage)
            inf = value(second, "reid_stage_latency_seconds_bucket", camera=camera, stage=stage, le="+Inf")
            assert count == inf >= value(first, "reid_stage_latency_seconds_count", camera=camera, stage=stage) > 0
        assert value(second, "reid_people_detected_total", camera=camera) > 0  # the sim world has people in view
        for kind in ("pending", "new", "matched", "expired"):
            assert (("reid_events_total", (("camera", camera), ("kind", kind)))) in second
        assert ("reid_gallery_identities", (("camera", camera),)) in second
        assert not any(n.startswith("reid_redis_") for n, _ in second)  # the hook stays unset without Redis
        code, body = get(f"{base}/nowhere")
        assert code == 404 and "/metrics" in body

        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert f"metrics on {base}/metrics" in err
        with pytest.raises(OSError):  # the endpoint closes with the run
            get(f"{base}/healthz", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def result(index: int, camera: str, people: int, events: tuple[str, ...] = (), latency_ms: float = 4.0):
    boxes = np.array([[10.0 * k, 20.0, 10.0 * k + 30.0, 140.0] for k in range(people)], np.float32).reshape(-1, 4)
    dets = Detections(boxes, np.full(people, 0.9, np.float32), np.arange(people, dtype=np.int64))
    evs = tuple(Event(kind, index, index / 30, camera, "" if kind == "pending" else "id1", 0) for kind in events)
    frame = Frame(depth=np.zeros((48, 64), np.uint16), index=index, timestamp=index / 30, camera_id=camera)
    return FrameResult(frame, dets, ("",) * people, events=evs, detector="depth",
                       latency_ms={s: latency_ms for s in STAGES})


def test_metrics_sink_counts_hand_made_results_per_camera():
    registry = CollectorRegistry()
    gallery = build_gallery(6, 8, 2, np.random.default_rng(0))  # 3 identities, 6 visits
    totals = {"hall": {"read": 0, "dropped": {"buffer_full": 0, "realtime": 0, "at_stop": 0, "unreadable": 0}}}

    def counts(camera):
        return totals.get(camera)

    now = [1000.0]
    sink = MetricsSink(registry, frame_counts=counts, gallery=gallery, clock=lambda: now[0])
    for i in range(3):
        totals["hall"] = {"read": 2 * (i + 1), "dropped": {"buffer_full": i + 1, "realtime": 0}}
        sink(result(i, "hall", people=2, events=("new",) if i == 0 else ("matched", "pending"), latency_ms=3.0))
    sink(result(0, "door", people=1, latency_ms=700.0))
    totals["hall"] = {"read": 6, "dropped": {"buffer_full": 3, "at_stop": 1}}  # the source stopped with one buffered
    sink.close()

    s = samples(prometheus_text(registry))
    assert value(s, "reid_frames_processed_total", camera="hall") == 3
    assert value(s, "reid_frames_processed_total", camera="door") == 1
    assert value(s, "reid_frames_read_total", camera="hall") == 6
    assert value(s, "reid_frames_dropped_total", camera="hall", reason="buffer_full") == 3
    assert value(s, "reid_frames_dropped_total", camera="hall", reason="at_stop") == 1  # counted at close
    assert value(s, "reid_frames_read_total", camera="door") == 0  # counts() knows nothing of the door camera
    assert value(s, "reid_people_detected_total", camera="hall") == 6
    assert value(s, "reid_people_in_view", camera="door") == 1
    assert value(s, "reid_events_total", camera="hall", kind="new") == 1
    assert value(s, "reid_events_total", camera="hall", kind="matched") == 2
    assert value(s, "reid_events_total", camera="hall", kind="pending") == 2
    assert value(s, "reid_events_total", camera="door", kind="new") == 0
    assert value(s, "reid_gallery_identities", camera="hall") == len(gallery) == 3
    assert value(s, "reid_gallery_visits", camera="hall") == len(gallery.visits) == 6
    # 3 ms falls in the 5 ms bucket, not the 2.5 ms one; 700 ms in the 1 s bucket
    assert value(s, "reid_stage_latency_seconds_bucket", camera="hall", stage="embed", le="0.0025") == 0
    assert value(s, "reid_stage_latency_seconds_bucket", camera="hall", stage="embed", le="0.005") == 3
    assert value(s, "reid_stage_latency_seconds_sum", camera="hall", stage="embed") == pytest.approx(0.009)
    assert value(s, "reid_stage_latency_seconds_bucket", camera="door", stage="detect", le="0.5") == 0
    assert value(s, "reid_stage_latency_seconds_bucket", camera="door", stage="detect", le="1.0") == 1

    health = registry_health(registry, clock=lambda: 1012.5)
    assert health["frames_processed"] == 4 and health["last_frame_age_s"] == pytest.approx(12.5)
    with pytest.raises(RuntimeError, match="closed"):
        sink(result(4, "hall", people=0))


class SharedGallery:
    """The contract a Redis-shared gallery will offer the metrics: ``sync_status() -> (lag_s, buffered)``."""

    visits = ()

    def __len__(self) -> int:
        return 0

    def sync_status(self) -> tuple[float, int]:
        return 0.25, 7


def test_redis_gauges_follow_the_gallery_sync_status_hook():
    registry = CollectorRegistry()
    MetricsSink(registry, gallery=SharedGallery())(result(0, "cam0", people=0))
    s = samples(prometheus_text(registry))
    assert value(s, "reid_redis_lag_seconds", camera="cam0") == 0.25
    assert value(s, "reid_redis_buffered_mutations", camera="cam0") == 7


def prometheus_text(registry) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()


def test_healthz_turns_503_when_no_frame_comes():
    registry, now = CollectorRegistry(), [0.0]
    with MetricsServer("127.0.0.1:0", registry, stale_after_s=5.0, clock=lambda: now[0]) as server:
        assert server.address.startswith("127.0.0.1:") and not server.address.endswith(":0")
        code, body = get(f"{server.url}/healthz")
        assert code == 200 and json.loads(body)["seconds_since_last_frame"] is None  # starting, within 5 s
        now[0] = 6.0
        code, body = get(f"{server.url}/healthz")
        assert code == 503 and json.loads(body) == {"status": "stale", "frames_processed": 0,
                                                    "seconds_since_last_frame": None, "stale_after_s": 5.0}


@pytest.mark.parametrize("text, expected", [("9108", ("127.0.0.1", 9108)), ("0.0.0.0:9108", ("0.0.0.0", 9108)),
                                            ("[::1]:80", ("::1", 80)), ("redis-host:1", ("redis-host", 1))])
def test_addresses(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("bad", ["", "nonsense", "host:", ":9108", "host:99999", "1.2.3.4:x", "::1:80", "a b:1"])
def test_bad_addresses_are_config_errors_naming_the_key(bad):
    with pytest.raises(ConfigError, match=r"output\.metrics.*expected HOST:PORT"):
        load_config(StreamConfig, None, [f"output.metrics={json.dumps(bad)}"])


def test_bad_address_on_the_command_line_exits_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "out"
    assert stream_main(["--camera", "sim", "--max-frames", "1", "--metrics", "localhost", "--output", str(out)]) \
        == EXIT_ERROR
    err = capsys.readouterr().err
    assert "output.metrics" in err and "expected HOST:PORT" in err and "'localhost'" in err
    assert not out.exists()


def test_port_in_use_is_a_clear_error_and_nothing_is_written(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsServerError, match=f"127.0.0.1:{port}.*already in use"):
            MetricsServer(port, CollectorRegistry())
        out = tmp_path / "out"
        assert stream_main(["--camera", "sim", "--max-frames", "1", "--metrics", f"127.0.0.1:{port}",
                            "--output", str(out)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"metrics endpoint 127.0.0.1:{port}" in err and "already in use" in err
    assert not out.exists()  # refused before the output directory is made
