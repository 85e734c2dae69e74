"""``reid-stream-bench``: end-to-end frames/s and per-stage latency of the live pipeline, and gallery match time.

Frames are rendered by the simulated camera first (640 x 480 RGB-D + IR, 4
people by default) and held in memory, so the figures are those of the
pipeline itself (detection, tracking, crops, embedding, gallery), not of the
renderer. The pipeline embeds each track on one frame in ``embed.every`` and
runs a frame's networks side by side (``embed.workers``). Baselines, timed in
the same run on the same frames: every track embedded on every frame, with the
networks side by side, one network after another (batched over the frame's
crops), and one crop at a time. Gallery
match time follows for 1k / 10k / 100k entries against a per-identity Python
loop (:mod:`reidstream.pipeline.gallery.bench`).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time

import numpy as np

from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.embed.stage import EmbedStage
from reidstream.pipeline.gallery import Gallery
from reidstream.pipeline.runner import Pipeline
from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.sources.sim import SimSource
from reidstream.pipeline.app.config import StreamConfig


class _OneByOne(EmbedStage):
    """The baseline: every crop through its network alone (batch 1)."""

    def __call__(self, crops):
        from reidstream.pipeline.types import Crops

        out = []
        for i in range(len(crops)):
            one = Crops({m: (c[i],) for m, c in crops.images.items()}, crops.boxes[i:i + 1],
                        crops.track_ids[i:i + 1], crops.frame_index)
            out.extend(super().__call__(one))
        return out


def render(frames: int, people: int, seed: int, light: float) -> list:
    """Pre-rendered frames of the simulated camera."""
    cfg = config_from_mapping(SimConfig, {"seed": seed, "modalities": ["rgb", "depth", "ir"], "crowd": {"people": people},
                                          "lighting": {"level": light}}, "<bench>")
    return list(SimSource.from_config(cfg, max_frames=frames))


def time_pipeline(items: list, cfg: StreamConfig, *, batched: bool, warmup: int = 10, sink=None) -> dict:
    """Processes ``items``; returns frames/s and per-stage latency percentiles over the timed frames.

    With a ``sink``, every result also goes to it on a sink thread, as in a run, and the time until the sink
    has taken the last result counts."""
    from reidstream.pipeline.loop import SinkWorker

    from reidstream.pipeline.app.stream import build_detector, build_tracker, bundle_of, calibration_of, pipeline_options

    bundle = bundle_of(cfg)
    stage = EmbedStage.from_bundle(bundle, device=cfg.device, workers=cfg.embed.workers)
    if not batched:
        stage = _OneByOne(stage.embedders, workers=1)
    pipe = Pipeline(build_detector(cfg, bundle), build_tracker(cfg, 15.0), stage,
                    Gallery.from_config(cfg.gallery, calibration_of(bundle)), **pipeline_options(cfg))
    worker = SinkWorker(sink) if sink is not None else None
    for item in items[:warmup]:
        r = pipe.process(item)
        if worker is not None:
            worker.put(r)
    lat: dict[str, list[float]] = {}
    people = 0
    t0 = time.perf_counter()
    for item in items[warmup:]:
        r = pipe.process(item)
        if worker is not None:
            worker.put(r)
        people += len(r.detections)
        for k, v in r.latency_ms.items():
            lat.setdefault(k, []).append(v)
    if worker is not None:
        worker.close()
    wall = time.perf_counter() - t0
    n = len(items) - warmup
    total = np.sum([np.asarray(v) for v in lat.values()], axis=0)
    return {"fps": n / wall, "frames": n, "people_per_frame": people / max(n, 1),
            "stages": {k: (float(np.percentile(v, 50)), float(np.percentile(v, 90))) for k, v in lat.items()},
            "total": (float(np.percentile(total, 50)), float(np.percentile(total, 90)))}


def _served(items: list, cfg: StreamConfig) -> dict[str, dict]:
    """The pipeline feeding the browser view (``--serve`` on a free loopback port): with nobody watching, with a
    client that reads the camera's MJPEG stream, and with one that opens it and never reads (its frames must be
    dropped for it alone)."""
    import socket

    from reidstream.pipeline.sinks.web import WebSink
    from reidstream.pipeline.web import LiveServer

    rows = {}
    web = LiveServer(_free_port())
    try:
        rows["pipeline + --serve, nobody watching"] = time_pipeline(
            items, cfg, batched=True, sink=WebSink(web.state, max_fps=cfg.output.serve_fps))
        host, port = web.url.split("//")[1].rstrip("/").rsplit(":", 1)
        camera = items[0].frame.camera_id
        request = f"GET /api/camera/{camera}/stream.mjpg HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        for name, reads in (("a client watching", True), ("a client that never reads", False)):
            client = socket.create_connection((host, int(port)))
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.sendall(request)
            reader = threading.Thread(target=_drain, args=(client,), daemon=True) if reads else None
            if reader is not None:
                reader.start()
            try:
                rows[f"pipeline + --serve, {name}"] = time_pipeline(
                    items, cfg, batched=True, sink=WebSink(web.state, max_fps=cfg.output.serve_fps))
            finally:
                client.close()
    finally:
        web.stop()
    return rows


def _drain(sock) -> None:
    """Reads a socket until it closes (a browser that keeps up)."""
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``reid-stream-bench``."""
    p = argparse.ArgumentParser(prog="reid-stream-bench", description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=150, help="frames timed per variant (after 10 warm-up frames)")
    p.add_argument("--people", type=int, default=4)
    p.add_argument("--light", type=float, default=1.0, help="scene light level (below ~0.1 the depth detector runs)")
    p.add_argument("--bundle", help="model bundle (default: the embedded one)")
    p.add_argument("--detector", choices=("auto", "depth", "yolo"), default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gallery-sizes", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    p.add_argument("--serve", action="store_true", help="also time the pipeline feeding the browser view "
                   "(reid-stream --serve), with nobody watching and with a client that never reads its stream")
    p.add_argument("--only-pipeline", action="store_true", help="skip the every-frame baselines")
    a = p.parse_args(argv)
    cfg = config_from_mapping(StreamConfig, {"bundle": a.bundle, "detector": {"kind": a.detector}}, "<bench>")
    print(f"rendering {a.frames + 10} frames of 640x480 RGB-D + IR with {a.people} people ...", file=sys.stderr)
    items = render(a.frames + 10, a.people, a.seed, a.light)
    def variant(**embed) -> StreamConfig:
        return cfg.model_copy(update={"embed": cfg.embed.model_copy(update=embed)})

    base = f"pipeline (1 frame in {cfg.embed.every})"
    rows = {base: time_pipeline(items, cfg, batched=True)}
    if a.serve:
        rows.update(_served(items, cfg))
    if not a.only_pipeline:
        rows.update({"every frame": time_pipeline(items, variant(every=1), batched=True),
                     "every frame, nets in turn": time_pipeline(items, variant(every=1, workers=1), batched=True),
                     "every frame, crop by crop": time_pipeline(items, variant(every=1, workers=1), batched=False)})
    print(f"end-to-end, {a.frames} frames 640x480, {a.people} people in the scene, default bundle, "
          f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()})")
    stages = list(next(iter(rows.values()))["stages"])
    width = max(30, *(len(name) for name in rows))
    print(f"{'variant':<{width}} {'frames/s':>8} {'people':>6}  " + " ".join(f"{s + ' p50/p90':>16}" for s in stages)
          + f" {'total p50/p90 ms':>17}")
    for name, r in rows.items():
        cells = " ".join(f"{r['stages'][s][0]:>7.1f}/{r['stages'][s][1]:<7.1f} " for s in stages)
        print(f"{name:<{width}} {r['fps']:>8.1f} {r['people_per_frame']:>6.1f}  {cells} {r['total'][0]:>7.1f}/"
              f"{r['total'][1]:<7.1f}")
    for name, r in rows.items():
        if "--serve" in name:
            print(f"{name}: {100 * (r['fps'] / rows[base]['fps'] - 1):+.1f} % frames/s against {base}")
    if a.serve:
        watched, slow = rows["pipeline + --serve, a client watching"], \
            rows["pipeline + --serve, a client that never reads"]
        print(f"a client that never reads against one that keeps up: {100 * (slow['fps'] / watched['fps'] - 1):+.1f} %"
              f" frames/s (its frames are dropped for it alone; drawing and encoding for a watcher cost the rest)")
    if a.gallery_sizes:
        from reidstream.pipeline.gallery import bench as gallery_bench

        print()
        gallery_bench.main(["--sizes", *map(str, a.gallery_sizes), "--dim", "128"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
