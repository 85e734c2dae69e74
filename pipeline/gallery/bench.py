"""Benchmark of the gallery's decision time against a naive per-identity Python loop.

Run as ``python -m reidstream.pipeline.gallery.bench`` (``reid-stream-bench`` runs it too). For each
gallery size (stored visits, ``V``; each with prototypes in four embedding features of ``D``
dimensions, colour statistics and a height, ``visits`` per identity) it times the worst frame the
live loop meets: ``Q`` tracks deciding (or re-checking) at once: fused evidence against every visit,
co-visibility exclusion, open-set assignment. The naive baseline computes the same fused evidence identity by identity in a Python loop.

On a small or busy machine, multi-threaded BLAS can stall a tiny product for a scheduler time slice
(milliseconds); ``OPENBLAS_NUM_THREADS=1`` (set before Python starts) gives the steadier figures a
real-time loop wants.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from reidstream.pipeline.gallery.calibration import Calibration, CueModel
from reidstream.pipeline.gallery.cues import COLOUR_DIM
from reidstream.pipeline.gallery.decide import assign_open_set
from reidstream.pipeline.gallery.evidence import TrackEvidence, Visit, VisitTable
from reidstream.pipeline.gallery.fusion import fused_llr
from reidstream.pipeline.gallery.store import Gallery, GalleryConfig, _Track

FEATURES = ("rgbd/rgb", "rgbd/depth", "rgbir/rgb", "rgbir/ir")


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def calibration() -> Calibration:
    """Every same-feature cue, two cross-modal ones, colour and height (values typical of a fit)."""
    cue = {"kind": "logistic", "params": (4.0, -12.0), "auc": 0.9, "n_same": 100, "n_diff": 100}
    cues = {f"{f}~{f}|any": CueModel(**cue) for f in (*FEATURES, "colour")}
    cues.update({"rgbd/depth~rgbd/rgb|any": CueModel(**cue), "rgbir/ir~rgbir/rgb|any": CueModel(**cue),
                 "height|any": CueModel("gauss", (0.02, 0.1), 0.95, 100, 100)})
    return Calibration(cues, threshold=3.0)


def _visit(rng: np.random.Generator, dim: int) -> Visit:
    vectors = {f: _unit(rng.normal(size=dim)) for f in FEATURES}
    vectors["colour"] = _unit(np.abs(rng.normal(size=COLOUR_DIM)))
    return Visit(vectors, float(rng.normal(1.72, 0.1)), 0.02, lit=bool(rng.random() < 0.5))


def build(visits: int, dim: int, per_identity: int, rng: np.random.Generator) -> Gallery:
    """A gallery with ``visits`` random visits, ``per_identity`` each, that ended long ago."""
    g = Gallery(calibration(), GalleryConfig(max_age_s=1e9, max_visits_per_identity=per_identity,
                                             max_identities=visits + 16))
    slot = -1
    for k in range(visits):
        if k % per_identity == 0:
            slot = g._new_identity(None, 0.0)
        g.visits.add(slot, -1, _visit(rng, dim), float(k), float(k) + 1.0)
    return g


def _tracks(g: Gallery, q: int, dim: int, rng: np.random.Generator) -> list[_Track]:
    out = []
    for _ in range(q):
        ev = TrackEvidence(1e7)
        v = _visit(rng, dim)
        for key, x in v.vectors.items():
            ev.add_vector(key, x, 1.0)
        ev.add_frame(1e7, 1.0, True, v.height, 0.02, np.nan, np.inf, None)
        out.append(_Track(ev))
    return out


def per_identity_tables(g: Gallery) -> dict[int, VisitTable]:
    """The baseline's layout: one small table per identity (built before timing)."""
    tables = {}
    for slot in range(g.slots):
        t = VisitTable()
        for r in g.visits.rows_of(slot):
            t.add(0, -1, g.visits.visit(int(r)), 0.0, 1.0)
        tables[slot] = t
    return tables


def naive_decide(g: Gallery, tables: dict[int, VisitTable], tracks: list[_Track]) -> dict[int, int]:
    """Baseline: the same fused evidence, identity by identity in a Python loop, then the same assignment."""
    summaries = [t.evidence.summary() for t in tracks]
    score = np.full((len(tracks), g.slots), -np.inf)
    for slot, table in tables.items():
        fused = fused_llr(summaries, table, g.calibration)
        score[:, slot] = fused.max(axis=1)
    return assign_open_set(score, g.threshold)


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def _explained(g, tracks) -> None:
    """A decision with its explanations (the browser view's evidence): scores with the per-cue terms, then each
    track explained as a new identity against its best match."""
    from reidstream.pipeline.gallery.explain import explain_row

    score, fused, _, parts = g._scores(tracks, explain=True)
    assign_open_set(score, g.threshold)
    for t, st in enumerate(tracks):
        explain_row(g, t, st, score, fused, parts, None, "new", 0.0)


def run(sizes, dim: int = 128, per_identity: int = 8, queries: int = 4, repeats: int = 9, naive_max: int = 2000,
        seed: int = 0) -> list[dict]:
    """Times decisions and re-checks for each size; returns one row per size."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        g = build(n, dim, per_identity, rng)
        tracks = _tracks(g, queries, dim, rng)
        decide_ms = _median_ms(lambda: assign_open_set(g._scores(tracks)[0], g.threshold), repeats)
        explain_ms = _median_ms(lambda: _explained(g, tracks), repeats)
        tables = per_identity_tables(g) if n <= naive_max else None
        naive = _median_ms(lambda: naive_decide(g, tables, tracks), 3) if tables is not None else None
        rows.append({"visits": n, "prototypes": int(sum(h[g.visits.used].sum() for h in g.visits.has.values())),
                     "identities": len(g), "decide_ms": decide_ms, "explain_ms": explain_ms, "naive_ms": naive})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line: prints a table of median decision times (ms) per gallery size."""
    p = argparse.ArgumentParser(prog="python -m reidstream.pipeline.gallery.bench", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--per-identity", type=int, default=8)
    p.add_argument("--queries", type=int, default=4)
    p.add_argument("--naive-max", type=int, default=2000)
    a = p.parse_args(argv)
    print(f"gallery decisions: {a.queries} tracks deciding at once against V stored visits (4 embedding features "
          f"of D={a.dim}, colour, height; {a.per_identity} visits per identity); median ms")
    print(f"{'visits':>8} {'prototypes':>10} {'identities':>10} {'decide ms':>10} {'explained ms':>12} {'naive ms':>9} "
          f"{'speed-up':>9}")
    for r in run(a.sizes, a.dim, a.per_identity, a.queries, naive_max=a.naive_max):
        naive = f"{r['naive_ms']:9.1f}" if r["naive_ms"] is not None else f"{'-':>9}"
        speed = f"{r['naive_ms'] / r['decide_ms']:8.1f}x" if r["naive_ms"] is not None else f"{'-':>9}"
        print(f"{r['visits']:>8} {r['prototypes']:>10} {r['identities']:>10} {r['decide_ms']:10.2f} "
              f"{r['explain_ms']:12.2f} {naive} {speed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
