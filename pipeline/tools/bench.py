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


def time_pipeline(items: list, cfg: StreamConfig, *, batched: bool, warmup: int = 10) -> dict:
    """Processes ``items``; returns frames/s and per-stage latency percentiles over the timed frames."""
    from reidstream.pipeline.app.stream import build_detector, build_tracker, bundle_of, calibration_of, pipeline_options

    bundle = bundle_of(cfg)
    stage = EmbedStage.from_bundle(bundle, device=cfg.device, workers=cfg.embed.workers)
    if not batched:
        stage = _OneByOne(stage.embedders, workers=1)
    pipe = Pipeline(build_detector(cfg, bundle), build_tracker(cfg, 15.0), stage,
                    Gallery.from_config(cfg.gallery, calibration_of(bundle)), **pipeline_options(cfg))
    for item in items[:warmup]:
        pipe.process(item)
    lat: dict[str, list[float]] = {}
    people = 0
    t0 = time.perf_counter()
    for item in items[warmup:]:
        r = pipe.process(item)
        people += len(r.detections)
        for k, v in r.latency_ms.items():
            lat.setdefault(k, []).append(v)
    wall = time.perf_counter() - t0
    n = len(items) - warmup
    total = np.sum([np.asarray(v) for v in lat.values()], axis=0)
    return {"fps": n / wall, "frames": n, "people_per_frame": people / max(n, 1),
            "stages": {k: (float(np.percentile(v, 50)), float(np.percentile(v, 90))) for k, v in lat.items()},
            "total": (float(np.percentile(total, 50)), float(np.percentile(total, 90)))}


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
    a = p.parse_args(argv)
    cfg = config_from_mapping(StreamConfig, {"bundle": a.bundle, "detector": {"kind": a.detector}}, "<bench>")
    print(f"rendering {a.frames + 10} frames of 640x480 RGB-D + IR with {a.people} people ...", file=sys.stderr)
    items = render(a.frames + 10, a.people, a.seed, a.light)
    def variant(**embed) -> StreamConfig:
        return cfg.model_copy(update={"embed": cfg.embed.model_copy(update=embed)})

    rows = {f"pipeline (1 frame in {cfg.embed.every})": time_pipeline(items, cfg, batched=True),
            "every frame": time_pipeline(items, variant(every=1), batched=True),
            "every frame, nets in turn": time_pipeline(items, variant(every=1, workers=1), batched=True),
            "every frame, crop by crop": time_pipeline(items, variant(every=1, workers=1), batched=False)}
    print(f"end-to-end, {a.frames} frames 640x480, {a.people} people in the scene, default bundle, "
          f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()})")
    stages = list(next(iter(rows.values()))["stages"])
    print(f"{'variant':<30} {'frames/s':>8} {'people':>6}  " + " ".join(f"{s + ' p50/p90':>16}" for s in stages)
          + f" {'total p50/p90 ms':>17}")
    for name, r in rows.items():
        cells = " ".join(f"{r['stages'][s][0]:>7.1f}/{r['stages'][s][1]:<7.1f} " for s in stages)
        print(f"{name:<30} {r['fps']:>8.1f} {r['people_per_frame']:>6.1f}  {cells} {r['total'][0]:>7.1f}/"
              f"{r['total'][1]:<7.1f}")
    if a.gallery_sizes:
        from reidstream.pipeline.gallery import bench as gallery_bench

        print()
        gallery_bench.main(["--sizes", *map(str, a.gallery_sizes), "--dim", "128"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
