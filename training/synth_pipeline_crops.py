"""Training crops cut the way the live pipeline cuts them (``reid-synth dataset pipeline``).

Groups of a few identities walk through the simulated room (:class:`SimWorld`, the
``reid-stream --camera sim`` camera: 1-8 m, entering and leaving at the image
borders, occluding each other). Each group is filmed twice with different motion
seeds: lit (camera ``c00``) and dark with the IR emitter on (camera ``c01``), so
"dark query vs lit gallery" is a cross-camera re-id protocol. On every ``every``-th
frame the detector ``reid-stream`` builds with its default config and the embedded
bundle (:func:`~reidstream.pipeline.app.stream.build_detector`) runs, its boxes are filtered
as the pipeline filters them (``valid_boxes``, ``detector.min_box_height``), matched
one-to-one to the ground truth (IoU >= 0.5; unmatched boxes are dropped) and cut with
the pipeline's :func:`~reidstream.pipeline.crops.cut_crops` at the detector's box.
Colour crops of frames the detector calls too dark for colour are skipped, as the
pipeline skips them (``dark_rgb=True`` keeps them). Identities without crops under
both lights are dropped.

Output: the generic folder layout (``data.layout: folder``), stems
``c<00 lit|01 dark>_g<group>_<frame>``, plus ``crops.jsonl`` (one line per crop: light,
GT distance and visible share, detector box, border cut, IoU) and ``meta.json``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import queue
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from reidstream.pipeline.sim.config import SimConfig
from reidstream.training.data import _io, folder
from reidstream.training.data.samples import CropCapture

LIGHTS = ("lit", "dark")
"""Light of camera 0 and camera 1."""
_TICKS = None  # worker processes: queue of (frames, crops) progress ticks


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lo, hi = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area_a, area_b = np.prod(a[:, 2:] - a[:, :2], axis=1), np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def _sequence(cfg: SimConfig, job: dict, cam: int, root: Path, tick) -> tuple[list[dict], dict[int, list[Path]], dict]:
    """Renders one group under one light; writes its crops; returns (crop records, files per identity, counts)."""
    from reidstream.pipeline.app.stream import build_detector, bundle_of
    from reidstream.pipeline.crops import cut_crops, valid_boxes
    from reidstream.pipeline.sim.world import SimWorld
    from reidstream.pipeline.app.config import StreamConfig
    from reidstream.pipeline.types import Detections, Modality
    from reidstream.pipeline.viz import thermal_to_uint8

    dark = LIGHTS[cam] == "dark"
    level = job["dark_level"] if dark else job["lit_level"]
    seed = int(np.random.SeedSequence([cfg.seed, job["seed"], job["group"], cam]).generate_state(1)[0])
    wcfg = cfg.model_copy(update={
        "seed": seed, "lighting": cfg.lighting.model_copy(update={"level": level, "period_s": 0.0}),
        "crowd": cfg.crowd.model_copy(update={"people": min(job["people"], len(job["ids"]))}),
        "sensors": cfg.sensors.model_copy(update={"emitter": True}) if dark else cfg.sensors})
    world = SimWorld.from_config(wcfg, identities=job["ids"])
    stream = StreamConfig()
    detector = build_detector(stream, bundle_of(stream))
    min_h = stream.detector.min_box_height
    k = world.renderer.rig.intrinsics
    seq = f"g{job['group']:04d}"
    records: list[dict] = []
    files: dict[int, list[Path]] = defaultdict(list)
    count = dict.fromkeys(job["ids"], 0)
    stats = {"rendered_frames": 0, "people_in_view": 0, "boxes": 0, "matched": 0}
    n = 0
    while n < job["frames"] or (n < 2 * job["frames"] and min(count.values()) < job["min_crops"]):
        item = world.step()
        for _ in range(job["every"] - 1):
            world.advance()
        n += 1
        frame = item.frame
        dets = valid_boxes(detector.detect(frame), min_size=1.0, frame=frame)
        keep = (dets.boxes[:, 3] - dets.boxes[:, 1]) >= min_h
        gt = [a for a in item.annotations if a.identity in count]
        written = 0
        stats["people_in_view"] += len(gt)
        stats["boxes"] += int(keep.sum())
        if keep.any() and gt:
            boxes, scores = dets.boxes[keep], dets.scores[keep]
            iou = _iou(boxes.astype(np.float64), np.array([a.box for a in gt], np.float64))
            rows, cols = linear_sum_assignment(-iou)
            pairs = [(r, c) for r, c in zip(rows, cols) if iou[r, c] >= 0.5]
            stats["matched"] += len(pairs)
            colour_ok = getattr(detector, "colour_ok", None)
            mods = [m for m in frame.modalities
                    if not (m is Modality.RGB and colour_ok is False and not job["dark_rgb"])]
            if pairs and mods:
                sel = np.array([r for r, _ in pairs])
                crops = cut_crops(frame, Detections(boxes[sel], scores[sel], np.arange(len(sel)), dets.modality,
                                                    frame.index), mods)
                for j, (r, c) in enumerate(pairs):
                    a = gt[c]
                    img = {m.value: crops.images[m][j] for m in mods}
                    if "thermal" in img:
                        img["thermal"] = thermal_to_uint8(img["thermal"])
                    cap = CropCapture(a.identity, cam, seq, frame.index, **img)
                    files[a.identity] += folder.write_capture(root / job["split"] / str(a.identity), cap)
                    x1, y1, x2, y2 = (float(v) for v in boxes[r])
                    sides = "".join(s for s, cut in zip("ltrb", (x1 <= 1, y1 <= 1, x2 >= k.width - 1,
                                                                 y2 >= k.height - 1)) if cut)
                    records.append({
                        "split": job["split"], "identity": a.identity, "camera": cam, "light": LIGHTS[cam],
                        "level": level, "sequence": seq, "frame": frame.index, "stem": folder.stem_of(cap),
                        "box": [round(v, 1) for v in (x1, y1, x2, y2)], "score": round(float(scores[r]), 3),
                        "gt_box": [round(v, 1) for v in a.box], "iou": round(float(iou[r, c]), 3),
                        "distance": round(a.distance, 3), "visible": round(a.visible, 3), "border": bool(sides),
                        "sides": sides, "colour_ok": colour_ok, "modalities": [m.value for m in cap.modalities]})
                    count[a.identity] += 1
                    written += 1
        tick(1, written)
    stats["rendered_frames"] = n
    return records, files, stats


def _run_group(cfg: SimConfig, job: dict, root: Path, tick=None) -> tuple[int, list[dict], dict[int, list[int]], dict]:
    """Both lights of one group; deletes identities not seen under both.

    Returns (group, records, dropped identity -> crops per light, counts)."""
    if tick is None:
        tick = (lambda f, c: _TICKS.put((f, c))) if _TICKS is not None else (lambda f, c: None)
    records, files, stats = [], defaultdict(list), defaultdict(int)
    for cam in range(len(LIGHTS)):
        r, f, counts = _sequence(cfg, job, cam, root, tick)
        records += r
        for key, v in counts.items():
            stats[key] += v
        for i, paths in f.items():
            files[i] += paths
    per_light = {i: [0] * len(LIGHTS) for i in job["ids"]}
    for r in records:
        per_light[r["identity"]][r["camera"]] += 1
    dropped = {i: n for i, n in per_light.items() if min(n) == 0}
    for i in dropped:
        shutil.rmtree(root / job["split"] / str(i), ignore_errors=True)
    return job["group"], [r for r in records if r["identity"] not in dropped], dropped, dict(stats)


def _init_worker(ticks) -> None:
    global _TICKS
    import cv2

    cv2.setNumThreads(1)
    _TICKS = ticks


def _worker(args: tuple) -> tuple[int, list[dict], dict[int, list[int]], dict]:
    return _run_group(*args)


def write_pipeline_dataset(out: str | Path, cfg: SimConfig, *, identities: int = 40, train_fraction: float = 0.5,
                           seed: int = 0, group: int = 5, people: int = 4, frames: int = 60, every: int = 8,
                           min_crops: int = 8, lit_level: float = 1.0, dark_level: float = 0.02,
                           dark_rgb: bool = False, workers: int = 1, overwrite: bool = False,
                           progress: bool = True) -> dict[str, int]:
    """Renders people walking through the room, lit and dark, and writes the pipeline's crops of them.

    Args:
        out: Dataset root (must be empty unless ``overwrite``).
        cfg: World config (camera, room, sensors, population); crowd size, light and motion seed are set per group.
        identities: Number of people drawn from the population (``crowd.population``, ``crowd.population_seed``).
        train_fraction: Share of people in the training split (the rest are test).
        seed: Seed of the identity choice, the split, the groups and the motion.
        group: Identities per group (each group walks the room on its own; splits do not mix in a group).
        people: People in the room at once (at most the group's size).
        frames: Rendered frames per group and light; up to twice as many while some identity of
            the group has fewer than ``min_crops`` crops.
        every: World frames per rendered frame (8 at the default 30 fps: 0.27 s between crops of a person).
        min_crops: Crops per identity and light that extend a sequence (0: never extend).
        lit_level: Light of camera 0 (1 = bright office).
        dark_level: Light of camera 1 (near dark; the IR emitter is on).
        dark_rgb: Keep colour crops of frames too dark for colour (the pipeline does not embed them).
        workers: Processes rendering groups in parallel.
        overwrite: Replace the contents of ``out``.
        progress: Print progress to stderr.

    Returns:
        Record counts per split as read back, written identities and crops, and dropped identities.
    """
    checks = {"identities": (identities, 2 <= identities <= cfg.crowd.population, f"2 .. {cfg.crowd.population}"),
              "train_fraction": (train_fraction, 0 < train_fraction < 1, "a value in (0, 1)"),
              "seed": (seed, seed >= 0, ">= 0"), "cfg.seed": (cfg.seed, cfg.seed >= 0, ">= 0"),
              "group": (group, group >= 1, ">= 1"), "people": (people, 1 <= people <= 32, "1 .. 32"),
              "frames": (frames, frames >= 1, ">= 1"), "every": (every, every >= 1, ">= 1"),
              "min_crops": (min_crops, min_crops >= 0, ">= 0"), "workers": (workers, workers >= 1, ">= 1"),
              "lit_level": (lit_level, 0 < lit_level <= 2, "a level in (0, 2]"),
              "dark_level": (dark_level, 0 < dark_level < lit_level, "a level in (0, lit_level)")}
    for name, (value, ok, expected) in checks.items():
        if not ok:
            raise ValueError(f"{name}: expected {expected}, got {value}")
    rng = np.random.default_rng([seed, 0xC0B5])
    ids = sorted(int(i) for i in rng.choice(cfg.crowd.population, identities, replace=False))
    order = rng.permutation(identities)
    n_train = min(max(1, round(identities * train_fraction)), identities - 1)
    split_ids = {"train": sorted(ids[i] for i in order[:n_train]), "test": sorted(ids[i] for i in order[n_train:])}
    jobs = []
    for split, members in split_ids.items():
        shuffled = [members[i] for i in rng.permutation(len(members))]
        for part in np.array_split(np.array(shuffled), -(-len(members) // group)):
            jobs.append({"group": len(jobs), "ids": sorted(int(i) for i in part), "split": split, "seed": seed,
                         "people": people, "frames": frames, "every": every, "min_crops": min_crops,
                         "lit_level": lit_level, "dark_level": dark_level, "dark_rgb": dark_rgb})
    root = _io.prepare_root(out, overwrite)
    planned, state, t0 = len(jobs) * len(LIGHTS) * frames, [0, 0], time.perf_counter()

    def tick(f: int, c: int) -> None:
        state[0] += f
        state[1] += c
        if progress and state[0] % 10 == 0:
            dt = time.perf_counter() - t0
            print(f"\r  {state[0]} frames (planned {planned}, up to {2 * planned}), {state[1]} crops, "
                  f"{state[0] / dt:.1f} frames/s, {state[1] / dt:.1f} crops/s", end="", file=sys.stderr, flush=True)

    results = []
    if workers == 1:
        results = [_run_group(cfg, job, root, tick) for job in jobs]
    else:
        ctx = mp.get_context("spawn")
        ticks = ctx.Queue()
        with ctx.Pool(workers, initializer=_init_worker, initargs=(ticks,)) as pool:
            pending = pool.map_async(_worker, [(cfg, job, root) for job in jobs], chunksize=1)
            while not pending.ready() or not ticks.empty():
                try:
                    tick(*ticks.get(timeout=0.2))
                except queue.Empty:
                    pass
            results = pending.get()
    if progress:
        dt = time.perf_counter() - t0
        print(f"\r  {state[0]} frames, {state[1]} crops in {dt:.1f} s ({state[0] / dt:.1f} frames/s, "
              f"{state[1] / dt:.1f} crops/s)" + " " * 20, file=sys.stderr)
    results.sort(key=lambda r: r[0])
    records = [r for _, recs, _, _ in results for r in recs]
    dropped = {i: n for _, _, d, _ in results for i, n in sorted(d.items())}
    with open(root / "crops.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    kept = {s: [i for i in m if i not in dropped] for s, m in split_ids.items()}
    meta = {"format": "reid-synth-pipeline-crops-v1", "cameras": {"0": "lit", "1": "dark"},
            "detector": "reid-stream default (build_detector, embedded bundle)", "seed": seed,
            "sim_seed": cfg.seed, "population": cfg.crowd.population, "population_seed": cfg.crowd.population_seed,
            "group": group, "people": people, "frames": frames, "every": every, "min_crops": min_crops,
            "lit_level": lit_level, "dark_level": dark_level, "dark_rgb": dark_rgb,
            **{k: sum(r[3][k] for r in results) for k in results[0][3]}, "seconds": round(time.perf_counter() - t0, 1),
            "crops": len(records), "dropped": {str(i): dict(zip(LIGHTS, n)) for i, n in dropped.items()}, **kept}
    (root / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    for s, members in kept.items():
        if not members:
            print(f"reid-synth dataset pipeline: warning: no {s} identity has crops under both lights",
                  file=sys.stderr)
    index = folder.read(root)
    counts = {s: len(index.records(s)) for s in index.split_names}
    return {**counts, "identities": sum(len(m) for m in kept.values()), "crops": len(records), "dropped": len(dropped)}
