"""Load test of the Redis-shared gallery: N worker processes replay synthetic observations at real time.

``python -m reidstream.pipeline.tools.redis_load --workers 4 --url redis://127.0.0.1:6379/0``

Each worker sees ``--people`` people (a disjoint share of a common population, who come back as new
tracks every ``--visit-s`` seconds, some of them also seen by the next worker) at ``--fps`` for
``--seconds``, once against the shared gallery and once against an in-process
:class:`~reidstream.pipeline.gallery.store.Gallery` fed the same frames, and reports the decision latency
(``match``) p50 / p99 of both, the Redis round trips per frame and the identities each ended with.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import numpy as np


def _feed(g, rng_seed: int, worker: int, n_workers: int, people: int, seconds: float, fps: float, visit_s: float,
          dim: int, realtime: bool) -> list[float]:
    from reidstream.pipeline.types import Embeddings, Modality

    rng = np.random.default_rng(rng_seed)
    population = rng.normal(size=(people * n_workers, dim))
    population /= np.linalg.norm(population, axis=1, keepdims=True)
    mine = [(worker * people + k) % len(population) for k in range(people)] + \
        [((worker + 1) % n_workers) * people]  # one person also seen by the next worker's camera
    times, start = [], time.perf_counter()
    noise = np.random.default_rng(worker)
    for f in range(int(seconds * fps)):
        t = f / fps
        visit = int(t // visit_s)
        ids = [p for k, p in enumerate(mine) if (k + visit) % 3 != 0]  # a third of them away each visit
        vec = population[ids] + 0.05 * noise.normal(size=(len(ids), dim))
        tracks = np.array([visit * 1000 + k for k in range(len(ids))], np.int64)
        obs = [Embeddings((vec / np.linalg.norm(vec, axis=1, keepdims=True)).astype(np.float32), Modality.RGB,
                          "rgbd", tracks)]
        t0 = time.perf_counter()
        g.match(obs, 1_000.0 + t)
        times.append(time.perf_counter() - t0)
        if realtime:
            time.sleep(max(0.0, start + (f + 1) / fps - time.perf_counter()))
    return times


def _worker(k: int, args: dict, out) -> None:
    from reidstream.pipeline.gallery import Gallery, GalleryConfig
    from reidstream.pipeline.gallery.calibration import Calibration, CueModel
    from reidstream.pipeline.gallery.shared import SharedGallery

    cal = Calibration({"rgbd/rgb~rgbd/rgb|any": CueModel("logistic", (6.0, -20.0), 0.99, 100, 100)}, 2.0)
    cfg = GalleryConfig(pending_s=0.5)
    feed = {"rng_seed": 7, "worker": k, "n_workers": args["workers"], "people": args["people"],
            "seconds": args["seconds"], "fps": args["fps"], "visit_s": args["visit_s"], "dim": args["dim"]}
    local = _feed(Gallery(cal, cfg), realtime=False, **feed)
    g = SharedGallery(args["url"], cal, cfg, worker=f"load-{k}", prefix=args["prefix"])
    trips0 = g.link.round_trips
    shared = _feed(g, realtime=True, **feed)
    g.finish(1_000.0 + args["seconds"])
    out.put((k, local, shared, (g.link.round_trips - trips0) / max(len(shared), 1), len(g)))
    g.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the workers and prints the comparison."""
    p = argparse.ArgumentParser(prog="python -m reidstream.pipeline.tools.redis_load", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--url", default="redis://127.0.0.1:6379/0", help="the Redis server (gallery.url)")
    p.add_argument("--people", type=int, default=6, help="people per worker")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--fps", type=float, default=15.0)
    p.add_argument("--visit-s", type=float, default=4.0)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--prefix", default=f"load{int(time.time())}", help="Redis key prefix (a fresh one per run)")
    args = vars(p.parse_args(argv))
    out = mp.get_context("spawn").Queue()
    procs = [mp.get_context("spawn").Process(target=_worker, args=(k, args, out)) for k in range(args["workers"])]
    for pr in procs:
        pr.start()
    rows = [out.get(timeout=args["seconds"] * 3 + 120) for _ in procs]
    for pr in procs:
        pr.join()
    ms = lambda xs, q: 1e3 * float(np.percentile(xs, q))
    local = np.concatenate([r[1] for r in rows])
    shared = np.concatenate([r[2] for r in rows])
    print(f"{args['workers']} workers x {args['people']} people, {args['fps']:g} fps, {args['seconds']:g} s, "
          f"{args['dim']}-D vectors")
    print(f"in-process gallery  match p50 {ms(local, 50):6.2f} ms  p99 {ms(local, 99):6.2f} ms")
    print(f"shared gallery      match p50 {ms(shared, 50):6.2f} ms  p99 {ms(shared, 99):6.2f} ms  "
          f"redis round trips/frame {np.mean([r[3] for r in rows]):.2f}")
    print(f"identities per replica: {sorted(r[4] for r in rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
