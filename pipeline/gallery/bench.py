"""Benchmark of :meth:`Gallery.match` against a naive per-identity Python loop.

Run as ``python -m reidstream.pipeline.gallery.bench``. For each gallery size
(entries in one space, ``D``-dimensional, ``K`` entries per identity) it times
one frame of ``Q`` queries (noisy copies of stored entries, so they match and
the gallery size stays constant) and prints the median over repeats. The naive
baseline keeps a dict identity -> list of vectors and loops over identities in
Python, computing each identity's distances on its own, then runs the same
optimal assignment; it is timed for the sizes up to ``--naive-max`` only.

On a small or busy machine, multi-threaded BLAS can stall a tiny product for a
scheduler time slice (milliseconds); ``OPENBLAS_NUM_THREADS=1`` (set before
Python starts) gives the steadier single-thread figures a real-time loop wants.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from reidstream.pipeline.gallery.matcher import assign
from reidstream.pipeline.gallery.store import Gallery
from reidstream.pipeline.types import Embeddings, Modality


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def build(entries: int, dim: int, per_identity: int, rng: np.random.Generator) -> tuple[Gallery, np.ndarray]:
    """A gallery with ``entries`` random entries in space ``rgbd`` (bulk-added), and its vectors."""
    identities = -(-entries // per_identity)
    g = Gallery(threshold=0.35, max_age_s=1e9, max_entries_per_identity_space=per_identity,
                max_identities=identities + 16)
    vectors = _unit(rng.normal(size=(entries, dim)))
    g._bulk_add("rgbd", vectors, np.arange(entries) // per_identity, timestamp=0.0)
    return g, vectors


def naive_match(people: dict[str, list[np.ndarray]], queries: np.ndarray, threshold: float) -> list:
    """Baseline: Python loop over identities, one distance computation each, then assignment."""
    names = list(people)
    cost = np.empty((len(queries), len(names)))
    for j, name in enumerate(names):
        entries = np.stack(people[name])
        cost[:, j] = (1.0 - queries @ entries.T).min(axis=1)
    return assign(cost, threshold)


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def run(sizes: list[int], dim: int, queries: int, per_identity: int, repeats: int, naive_max: int,
        seed: int) -> list[dict]:
    """Times gallery and naive matching for each size; returns one row per size."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        t0 = time.perf_counter()
        g, vectors = build(n, dim, per_identity, rng)
        build_s = time.perf_counter() - t0
        picks = rng.choice(n, size=queries, replace=False)
        while len(set(picks // per_identity)) < queries:  # one query per identity (no competition)
            picks = rng.choice(n, size=queries, replace=False)
        q = _unit(vectors[picks] + 0.01 * rng.normal(size=(queries, dim)))
        obs = [Embeddings(q, Modality.RGB, "rgbd", np.arange(queries, dtype=np.int64))]
        clock = iter(range(1, 10**9))
        ms = _median_ms(lambda: g.match(obs, float(next(clock))), repeats)
        assert all(not m.is_new for m in g.match(obs, 0.5)), "benchmark queries should match"
        row = {"entries": n, "identities": len(g), "build_s": build_s, "gallery_ms": ms, "naive_ms": None}
        if n <= naive_max:
            people: dict[str, list[np.ndarray]] = {}
            for i, v in enumerate(vectors):
                people.setdefault(f"id-{i // per_identity + 1:04d}", []).append(v)
            row["naive_ms"] = _median_ms(lambda: naive_match(people, q, 0.35), repeats)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line: prints a table of median match times (ms) per gallery size."""
    p = argparse.ArgumentParser(prog="python -m reidstream.pipeline.gallery.bench", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000], help="entries in the space")
    p.add_argument("--dim", type=int, default=256, help="embedding size D")
    p.add_argument("--queries", type=int, default=4, help="queries (tracks) per frame")
    p.add_argument("--per-identity", type=int, default=32, help="entries per identity (ring length K)")
    p.add_argument("--repeats", type=int, default=30, help="timed frames per size")
    p.add_argument("--naive-max", type=int, default=10_000, help="largest size the naive loop is timed at")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rows = run(args.sizes, args.dim, args.queries, args.per_identity, args.repeats, args.naive_max, args.seed)
    print(f"gallery match, one space, D={args.dim}, {args.queries} queries/frame, K={args.per_identity}, "
          f"median of {args.repeats} frames; numpy {np.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print(f"{'entries':>8} {'identities':>10} {'build s':>8} {'gallery ms':>11} {'naive ms':>9} {'speed-up':>9}")
    for r in rows:
        naive = f"{r['naive_ms']:9.3f}" if r["naive_ms"] is not None else f"{'-':>9}"
        speed = f"{r['naive_ms'] / r['gallery_ms']:8.1f}x" if r["naive_ms"] is not None else f"{'-':>9}"
        print(f"{r['entries']:>8} {r['identities']:>10} {r['build_s']:8.2f} {r['gallery_ms']:11.3f} {naive} {speed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
