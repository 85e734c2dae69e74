"""Parity check of a bundle: every exported runtime against PyTorch, on real crops of an evaluation set.

For each model of the bundle, the reference is its PyTorch embedder (the bundle's
``.pt`` files). Every other runtime (ONNX Runtime, TensorRT) embeds the same
crops; the check reports

* the cosine similarity of each crop's embedding to the reference's (min and mean),
* the agreement of the top-k rankings: for every query crop of one modality, the
  k nearest gallery crops of each other modality of the space (or of the same
  modality, self excluded, for a one-modality model) must come out identical,
  in the same order, as under PyTorch,
* the norm of each embedding, where the manifest says the output is L2-normalised,

and fails when the minimum cosine or the agreement falls below its threshold, or an
output said to be normalised is not.

Near-ties: on a model whose embeddings are close to chance (a tiny or early model,
cross-modal directions) many gallery distances are nearly equal, and a difference of
1e-7 between runtimes legitimately swaps them. The agreement is therefore reported
twice: ``identical`` (raw: the lists are the same, index for index) and
``identical_tol`` (tolerance-aware: at every rank, the item the runtime put there has
a reference cosine distance within :data:`DEFAULT_DISTANCE_TOL` of the reference's
item at that rank, so only swaps of items whose distances really differ count). The
threshold applies to the tolerance-aware figure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from reidstream.pipeline.bundle import Bundle, BundleError, EmbedderFile
from reidstream.pipeline.embed import open_embedder

DEFAULT_MIN_COSINE = {"fp32": 0.9999, "fp16": 0.999, "int8": 0.98}
DEFAULT_MIN_TOPK = {"fp32": 1.0, "fp16": 0.9, "int8": 0.7}
"""Per precision: the threshold of the minimum cosine and of the (tolerance-aware) top-k agreement."""
DEFAULT_DISTANCE_TOL = {"fp32": 1e-5, "fp16": 1e-3, "int8": 1e-2}
"""Per precision: numeric tolerance on cosine distances (absolute, and relative to the distance, whichever
is larger). Two gallery items whose reference distances to a query differ by no more than this are ties
for the top-k agreement: fp32 runtimes differ by ~1e-7, fp16 by ~1e-4, int8 by ~1e-3."""
DEFAULT_NORM_TOL = {"fp32": 1e-3, "fp16": 1e-2, "int8": 5e-2}
"""Per precision: largest allowed ``| ||e|| - 1 |`` of an embedding whose manifest entry says ``normalized``."""


@dataclass(frozen=True)
class CropSet:
    """Raw crops of one modality with their person ids."""

    crops: tuple[np.ndarray, ...]
    pids: np.ndarray


def dataset_crops(layout: str, root: str | Path, modalities: Sequence[str], *, split: str = "test",
                  limit: int = 200, trial: int | None = None) -> dict[str, CropSet]:
    """Up to ``limit`` crops per modality from a dataset split, spread evenly over the split.

    Raises:
        ValueError: unknown layout, or no split ``split`` (names the dataset root and its splits).
    """
    from reidstream.training.data import LAYOUTS, load_image

    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {sorted(LAYOUTS)}, got {layout!r}")
    index = LAYOUTS[layout].read(root, trial=trial) if layout == "regdb" and trial else LAYOUTS[layout].read(root)
    if split not in index.split_names:
        raise ValueError(f"{root}: no split {split!r} in this {layout} copy; splits are {list(index.split_names)}")
    out = {}
    for m in modalities:
        recs = index.records(split, m)
        if not recs:
            continue
        pick = np.unique(np.linspace(0, len(recs) - 1, min(limit, len(recs))).round().astype(int))
        out[m] = CropSet(tuple(load_image(recs[i], m) for i in pick), np.array([recs[i].pid for i in pick]))
    return out


def topk_lists(query: np.ndarray, gallery: np.ndarray, k: int, exclude_self: bool = False) -> np.ndarray:
    """Indices of the ``k`` most similar gallery rows per query (cosine of normalised rows), best first.

    Ties are broken by gallery index (stable sort), so equal scores rank the same under every runtime.
    """
    sim = query @ gallery.T
    if exclude_self:
        np.fill_diagonal(sim, -np.inf)
    k = min(k, gallery.shape[0] - (1 if exclude_self else 0))
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


def topk_agreement(ref_query: np.ndarray, ref_gallery: np.ndarray, query: np.ndarray, gallery: np.ndarray,
                   k: int, *, tol: float, exclude_self: bool = False) -> tuple[float, float, int]:
    """Raw and tolerance-aware agreement of a runtime's top-k lists with the reference's.

    Args:
        ref_query: Reference (PyTorch) query embeddings, ``Q x D``.
        ref_gallery: Reference gallery embeddings, ``G x D``.
        query: The runtime's query embeddings (same rows).
        gallery: The runtime's gallery embeddings (same rows).
        k: Length of the lists.
        tol: Cosine-distance tolerance (absolute, or relative to the distance, whichever is larger);
            reordered items whose reference distances differ by no more than this are ties.
        exclude_self: Query and gallery are the same set; each query's own row is left out.

    Returns:
        ``(raw, tolerant, k)``: the fraction of queries whose lists are identical index for index,
        the fraction whose lists agree up to ties, and the list length used.
    """
    a = topk_lists(ref_query, ref_gallery, k, exclude_self)
    b = topk_lists(query, gallery, k, exclude_self)
    raw = np.all(a == b, axis=1)
    dist = 1.0 - ref_query @ ref_gallery.T
    if exclude_self:
        np.fill_diagonal(dist, np.inf)
    rows = np.arange(len(a))[:, None]
    da, db = dist[rows, a], dist[rows, b]
    close = np.abs(da - db) <= np.maximum(tol, tol * np.abs(da))
    return float(np.mean(raw)), float(np.mean(raw | np.all(close, axis=1))), a.shape[1]


@dataclass(frozen=True)
class FileParity:
    """Cosine agreement of one exported file with its PyTorch reference."""

    model: str
    modality: str
    runtime: str
    precision: str
    path: str
    crops: int
    cos_min: float
    cos_mean: float
    max_abs_diff: float
    threshold: float
    norm_max_dev: float = 0.0
    norm_tol: float = float("inf")
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.cos_min >= self.threshold and self.norm_max_dev <= self.norm_tol


@dataclass(frozen=True)
class RankingParity:
    """Top-k agreement of one query/gallery direction between a runtime and PyTorch."""

    model: str
    query: str
    gallery: str
    runtime: str
    precision: str
    queries: int
    k: int
    identical: float
    threshold: float
    identical_tol: float = -1.0
    tolerance: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.identical_tol if self.identical_tol >= 0 else self.identical) >= self.threshold


@dataclass(frozen=True)
class VerifyReport:
    """All figures of one verification run."""

    files: tuple[FileParity, ...]
    rankings: tuple[RankingParity, ...]

    @property
    def ok(self) -> bool:
        return bool(self.files) and all(f.ok for f in self.files) and all(r.ok for r in self.rankings)

    def to_dict(self) -> dict[str, Any]:
        files = [{k: (None if v == float("inf") else v) for k, v in dict(asdict(f), ok=f.ok).items()}
                 for f in self.files]
        return {"ok": self.ok, "files": files,
                "rankings": [dict(asdict(r), ok=r.ok) for r in self.rankings]}

    def table(self) -> str:
        """The figures as a plain-text table."""
        lines = [f"{'model':<12} {'modality':<8} {'runtime':<16} {'crops':>5} {'cos min':>10} {'cos mean':>10} "
                 f"{'max |diff|':>10} {'|norm-1|':>9}  {'threshold':>9}  result"]
        for f in self.files:
            lines.append(f"{f.model:<12} {f.modality:<8} {f.runtime + '/' + f.precision:<16} {f.crops:>5} "
                         f"{f.cos_min:>10.7f} {f.cos_mean:>10.7f} {f.max_abs_diff:>10.2e} {f.norm_max_dev:>9.1e}  "
                         f"{f.threshold:>9.4f}  {'ok' if f.ok else 'FAIL: ' + f.reason}")
        lines.append("")
        lines.append(f"{'model':<12} {'query -> gallery':<18} {'runtime':<16} {'queries':>7} {'top-k identical':>16} "
                     f"{'up to ties':>10} {'tie tol':>8}  {'threshold':>9}  result")
        for r in self.rankings:
            tol = r.identical_tol if r.identical_tol >= 0 else r.identical
            lines.append(f"{r.model:<12} {r.query + ' -> ' + r.gallery:<18} {r.runtime + '/' + r.precision:<16} "
                         f"{r.queries:>7} {'top-' + str(r.k) + ' ' + format(100 * r.identical, '.1f') + '%':>16} "
                         f"{format(100 * tol, '.1f') + '%':>10} {r.tolerance:>8.0e}  "
                         f"{100 * r.threshold:>8.1f}%  {'ok' if r.ok else 'FAIL'}")
        lines.append("")
        lines.append("top-k identical: raw, index for index; up to ties: swaps of items whose reference cosine "
                     "distances differ by <= tie tol are not counted (the threshold applies to this figure)")
        return "\n".join(lines)


def verify_bundle(bundle: Bundle, crops: Mapping[str, Mapping[str, CropSet]], *, k: int = 5,
                  min_cosine: float | None = None, min_topk: float | None = None, device: str = "cpu",
                  runtimes: Sequence[str] = ("onnx", "tensorrt"),
                  progress: Callable[[str], None] | None = None,
                  distance_tol: float | None = None) -> VerifyReport:
    """Compares every exported embedder of ``bundle`` with its PyTorch reference.

    Args:
        bundle: A loaded bundle holding the ``torch`` files of its models.
        crops: Model id -> modality -> crops to embed (models without crops are an error).
        k: Length of the compared rankings.
        min_cosine: Threshold of the minimum cosine (None: :data:`DEFAULT_MIN_COSINE` per precision).
        min_topk: Threshold of the fraction of top-k lists identical up to ties (None: :data:`DEFAULT_MIN_TOPK`).
        distance_tol: Cosine-distance tolerance of ties (None: :data:`DEFAULT_DISTANCE_TOL` per precision).
        device: Device of the reference and ONNX Runtime (``cpu``/``cuda``); TensorRT always runs on CUDA.
        runtimes: Runtimes to check; TensorRT files are skipped (with a message) where TensorRT is absent.
        progress: Called with one-line status messages.

    Raises:
        BundleError: a model without PyTorch files, or without crops of any of its modalities.
    """
    say = progress or (lambda _m: None)
    files, rankings = [], []
    for model in bundle.manifest.models:
        refs = {e.modality: e for e in bundle.embedders("torch") if e.model == model.id}
        if not refs:
            raise BundleError(f"{bundle.root}: model {model.id!r} has no PyTorch files to verify against; export "
                              f"with --runtimes torch,onnx")
        sets = {m: c for m, c in crops.get(model.id, {}).items() if m in refs and c.crops}
        if not sets:
            raise BundleError(f"{bundle.root}: no crops of {sorted(refs)} for model {model.id!r}; give an "
                              f"evaluation set holding them (--data, --layout)")
        say(f"{model.id}: PyTorch reference on {', '.join(f'{len(c.crops)} {m}' for m, c in sets.items())} crops")
        ref = {m: open_embedder(bundle, refs[m], device).embed(sets[m].crops) for m in sets}
        cands: dict[tuple[str, str], dict[str, EmbedderFile]] = {}
        for e in bundle.embedders():
            if e.model == model.id and e.runtime in runtimes and e.runtime != "torch" and e.modality in sets:
                cands.setdefault((e.runtime, e.precision), {})[e.modality] = e
        for (runtime, precision), entries in cands.items():
            if runtime == "tensorrt" and not _tensorrt_runs():
                say(f"{model.id}: skipping TensorRT files (TensorRT or a CUDA GPU is not available here)")
                continue
            got = {}
            for m, e in entries.items():
                say(f"{model.id}: {e.path} ({runtime}/{precision})")
                got[m] = open_embedder(bundle, e, "cuda" if runtime == "tensorrt" else device).embed(sets[m].crops)
                cos = np.sum(got[m] * ref[m], axis=1) / np.maximum(
                    np.linalg.norm(got[m], axis=1) * np.linalg.norm(ref[m], axis=1), 1e-12)
                thr = DEFAULT_MIN_COSINE[precision] if min_cosine is None else min_cosine
                norm_tol = DEFAULT_NORM_TOL[precision] if e.output.normalized else float("inf")
                dev = float(np.abs(np.linalg.norm(got[m], axis=1) - 1.0).max()) if e.output.normalized else 0.0
                reason = _file_reason(bundle, e, sets[m], ref[m], float(cos.min()), thr, dev, norm_tol, device)
                files.append(FileParity(model.id, m, runtime, precision, e.path, len(cos), float(cos.min()),
                                        float(cos.mean()), float(np.abs(got[m] - ref[m]).max()), thr, dev,
                                        norm_tol, reason))
            thr = DEFAULT_MIN_TOPK[precision] if min_topk is None else min_topk
            tol = DEFAULT_DISTANCE_TOL[precision] if distance_tol is None else distance_tol
            for q, g in _directions(sorted(got)):
                nq, ng = _unit(got[q]), _unit(got[g])
                raw, tolerant, kk = topk_agreement(_unit(ref[q]), _unit(ref[g]), nq, ng, k, tol=tol,
                                                   exclude_self=q == g)
                rankings.append(RankingParity(model.id, q, g, runtime, precision, len(nq), kk, raw, thr,
                                              tolerant, tol))
    return VerifyReport(tuple(files), tuple(rankings))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _file_reason(bundle: Bundle, entry: EmbedderFile, crops: CropSet, ref: np.ndarray, cos_min: float,
                 threshold: float, norm_dev: float, norm_tol: float, device: str) -> str:
    """Why one file fails ("" when it does not): unnormalised output, swapped colour order, other mismatch."""
    why = []
    if norm_dev > norm_tol:
        why.append(f"output is not L2-normalised (max |norm - 1| = {norm_dev:.2e} > {norm_tol:.0e}) although the "
                   f"manifest says output.normalized = true")
    if cos_min < threshold:
        hint = ("embeddings differ from PyTorch on the same crops: the file was exported from a different network "
                "or with a different preprocessing baked in (mean/std, input scaling)")
        if entry.input.channels == 3:
            emb = open_embedder(bundle, entry, "cuda" if entry.runtime == "tensorrt" else device)
            x = np.stack([emb.preprocess(c) for c in crops.crops])[:, ::-1]
            flipped = emb.embed_batch(np.ascontiguousarray(x))
            fc = np.sum(_unit(flipped) * _unit(ref), axis=1)
            if float(fc.min()) >= threshold:
                hint = (f"colour order swapped: the file matches PyTorch only when its input channels are reversed "
                        f"(RGB vs BGR; manifest says {entry.input.colour_order})")
        why.append(f"cos min {cos_min:.6f} < {threshold}: {hint}")
    return "; ".join(why)


def _directions(modalities: Sequence[str]) -> list[tuple[str, str]]:
    if len(modalities) == 1:
        return [(modalities[0], modalities[0])]
    return [(q, g) for q in modalities for g in modalities if q != g]


def _tensorrt_runs() -> bool:
    try:
        from reidstream.export.tensorrt_build import tensorrt_available
    except ImportError:
        return False
    return tensorrt_available()
