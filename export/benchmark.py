"""Embedder throughput of a bundle: crops/s per runtime and batch size, PyTorch as the baseline, in one run.

The network alone is timed (inputs already preprocessed, as the pipeline
batches them); each measurement warms up first, then repeats the batch until
``seconds`` have passed and reports the median latency of a batch and the
crops per second it implies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from reidstream.pipeline.bundle import Bundle, BundleError, EmbedderFile
from reidstream.pipeline.embed import open_backend


@dataclass(frozen=True)
class Throughput:
    """One runtime at one batch size."""

    runtime: str
    precision: str
    batch: int
    median_ms: float
    crops_per_s: float
    runs: int


def time_backend(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, *, seconds: float, warmup: int = 3,
                 min_runs: int = 5) -> tuple[float, int]:
    """Median seconds per call of ``run(x)`` over at least ``min_runs`` calls and ``seconds`` seconds."""
    for _ in range(warmup):
        run(x)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), len(times)


def pick(bundle: Bundle, model: str | None, modality: str | None) -> list[EmbedderFile]:
    """All files (every runtime) of one model and modality; by default the first embedder's."""
    entries = bundle.embedders()
    if not entries:
        raise BundleError(f"{bundle.root}: bundle holds no embedders to benchmark")
    model = model or entries[0].model
    modality = modality or next(e.modality for e in entries if e.model == model)
    chosen = [e for e in entries if e.model == model and e.modality == modality]
    if not chosen:
        raise BundleError(f"{bundle.root}: no embedder of model {model!r} and modality {modality!r}; it has "
                          f"{sorted({(e.model, e.modality) for e in entries})}")
    return chosen


def benchmark_bundle(bundle: Bundle, *, model: str | None = None, modality: str | None = None,
                     batches: Sequence[int] = (1, 8, 32), seconds: float = 2.0, device: str = "cpu",
                     progress: Callable[[str], None] | None = None) -> list[Throughput]:
    """Throughput of every runtime of one embedder (TensorRT only where it runs).

    Raises:
        BundleError: no such embedder, or no PyTorch file to serve as the baseline.
    """
    say = progress or (lambda _m: None)
    entries = pick(bundle, model, modality)
    if not any(e.runtime == "torch" for e in entries):
        raise BundleError(f"{bundle.root}: no PyTorch file of {entries[0].model}/{entries[0].modality} for the "
                          f"baseline; export with --runtimes torch,onnx")
    rng = np.random.default_rng(0)
    out = []
    for e in sorted(entries, key=lambda e: ("torch", "onnx", "tensorrt").index(e.runtime)):
        if e.runtime == "tensorrt":
            from reidstream.export.verify import _tensorrt_runs

            if not _tensorrt_runs():
                say(f"{e.path}: skipped (TensorRT or a CUDA GPU is not available here)")
                continue
        backend = open_backend(bundle.path(e), e, "cuda" if e.runtime == "tensorrt" else device)
        for b in batches:
            if b > e.input.batch.max or b < e.input.batch.min:
                say(f"{e.path}: batch {b} outside the file's range {e.input.batch.min}..{e.input.batch.max}; skipped")
                continue
            x = rng.normal(size=(b, e.input.channels, e.input.height, e.input.width)).astype(np.float32)
            sec, runs = time_backend(backend, x, seconds=seconds)
            out.append(Throughput(e.runtime, e.precision, b, 1000 * sec, b / sec, runs))
            say(f"{e.runtime}/{e.precision} batch {b}: {b / sec:.1f} crops/s")
    return out


def format_table(rows: Sequence[Throughput], title: str) -> str:
    """Crops/s per runtime and batch, with the speed-up over PyTorch at the same batch."""
    base = {r.batch: r.crops_per_s for r in rows if r.runtime == "torch"}
    lines = [title, f"{'runtime':<18} {'batch':>5} {'median ms':>10} {'crops/s':>10} {'vs PyTorch':>10} {'runs':>6}"]
    for r in rows:
        speed = f"{r.crops_per_s / base[r.batch]:.2f}x" if r.batch in base else "-"
        lines.append(f"{r.runtime + '/' + r.precision:<18} {r.batch:>5} {r.median_ms:>10.2f} {r.crops_per_s:>10.1f} "
                     f"{speed:>10} {r.runs:>6}")
    return "\n".join(lines)
