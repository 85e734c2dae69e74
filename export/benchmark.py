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


@dataclass(frozen=True)
class CropCost:
    """One ONNX embedder's cost per crop at one batch size and thread count."""

    model: str
    modality: str
    input: str
    batch: int
    threads: int
    ms_per_crop: float
    runs: int


def crop_costs(bundle: Bundle, *, batch: int = 8, threads: int = 1, seconds: float = 2.0,
               progress: Callable[[str], None] | None = None) -> list[CropCost]:
    """Milliseconds per crop of every ONNX embedder of a bundle (ONNX Runtime on the CPU, ``threads`` intra-op
    threads), the networks side by side in one run: the live pipeline's CPU budget per network.

    Raises:
        BundleError: the bundle has no ONNX embedder.
    """
    from reidstream.pipeline.embed.onnx_backend import OnnxRuntimeBackend

    say = progress or (lambda _m: None)
    entries = bundle.embedders("onnx")
    if not entries:
        raise BundleError(f"{bundle.root}: no ONNX embedder to time")
    rng = np.random.default_rng(0)
    out = []
    for e in entries:
        backend = OnnxRuntimeBackend(bundle.path(e), e, "cpu", threads=threads)
        x = rng.normal(size=(batch, e.input.channels, e.input.height, e.input.width)).astype(np.float32)
        sec, runs = time_backend(backend, x, seconds=seconds)
        out.append(CropCost(e.model, e.modality, f"{e.input.channels}x{e.input.height}x{e.input.width}", batch,
                            threads, 1000 * sec / batch, runs))
        say(f"{e.path}: {1000 * sec / batch:.2f} ms per crop")
    return out


def format_costs(rows: Sequence[CropCost], budget_ms: float | None = None) -> str:
    """One line per network: ms per crop, and whether it keeps ``budget_ms``."""
    lines = [f"{'network':<24} {'input':>10} {'batch':>5} {'threads':>7} {'ms/crop':>8} {'runs':>5}"
             + (f" {'budget':>8}" if budget_ms else "")]
    for r in rows:
        keeps = (" " + (f"{'ok':>8}" if r.ms_per_crop <= budget_ms else f"{'over':>8}")) if budget_ms else ""
        lines.append(f"{r.model + '-' + r.modality:<24} {r.input:>10} {r.batch:>5} {r.threads:>7} "
                     f"{r.ms_per_crop:>8.2f} {r.runs:>5}{keeps}")
    return "\n".join(lines)


def format_table(rows: Sequence[Throughput], title: str) -> str:
    """Crops/s per runtime and batch, with the speed-up over PyTorch at the same batch."""
    base = {r.batch: r.crops_per_s for r in rows if r.runtime == "torch"}
    lines = [title, f"{'runtime':<18} {'batch':>5} {'median ms':>10} {'crops/s':>10} {'vs PyTorch':>10} {'runs':>6}"]
    for r in rows:
        speed = f"{r.crops_per_s / base[r.batch]:.2f}x" if r.batch in base else "-"
        lines.append(f"{r.runtime + '/' + r.precision:<18} {r.batch:>5} {r.median_ms:>10.2f} {r.crops_per_s:>10.1f} "
                     f"{speed:>10} {r.runs:>6}")
    return "\n".join(lines)
