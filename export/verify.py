"""Parity check of a bundle: every exported runtime against PyTorch, on real crops of an evaluation set.

For each model of the bundle, the reference is its PyTorch embedder (the bundle's
``.pt`` files). Every other runtime (ONNX Runtime, TensorRT) embeds the same
crops; the check reports

* the cosine similarity of each crop's embedding to the reference's (min and mean),
* the agreement of the top-k rankings: for every query crop of one modality, the
  k nearest gallery crops of each other modality of the space (or of the same
  modality, self excluded, for a one-modality model) must come out identical,
  in the same order, as under PyTorch,

and fails when the minimum cosine or the agreement falls below its threshold.
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
"""Per precision: the threshold of the minimum cosine and of the top-k agreement."""


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

    @property
    def ok(self) -> bool:
        return self.cos_min >= self.threshold


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

    @property
    def ok(self) -> bool:
        return self.identical >= self.threshold


@dataclass(frozen=True)
class VerifyReport:
    """All figures of one verification run."""

    files: tuple[FileParity, ...]
    rankings: tuple[RankingParity, ...]

    @property
    def ok(self) -> bool:
        return bool(self.files) and all(f.ok for f in self.files) and all(r.ok for r in self.rankings)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "files": [dict(asdict(f), ok=f.ok) for f in self.files],
                "rankings": [dict(asdict(r), ok=r.ok) for r in self.rankings]}

    def table(self) -> str:
        """The figures as a plain-text table."""
        lines = [f"{'model':<12} {'modality':<8} {'runtime':<16} {'crops':>5} {'cos min':>10} {'cos mean':>10} "
                 f"{'max |diff|':>10}  {'threshold':>9}  result"]
        for f in self.files:
            lines.append(f"{f.model:<12} {f.modality:<8} {f.runtime + '/' + f.precision:<16} {f.crops:>5} "
                         f"{f.cos_min:>10.7f} {f.cos_mean:>10.7f} {f.max_abs_diff:>10.2e}  {f.threshold:>9.4f}  {'ok' if f.ok else 'FAIL'}")
        lines.append("")
        lines.append(f"{'model':<12} {'query -> gallery':<18} {'runtime':<16} {'queries':>7} {'top-k identical':>16}  "
                     f"{'threshold':>9}  result")
        for r in self.rankings:
            lines.append(f"{r.model:<12} {r.query + ' -> ' + r.gallery:<18} {r.runtime + '/' + r.precision:<16} "
                         f"{r.queries:>7} {'top-' + str(r.k) + ' ' + format(100 * r.identical, '.1f') + '%':>16}  "
                         f"{100 * r.threshold:>8.1f}%  {'ok' if r.ok else 'FAIL'}")
        return "\n".join(lines)


def verify_bundle(bundle: Bundle, crops: Mapping[str, Mapping[str, CropSet]], *, k: int = 5,
                  min_cosine: float | None = None, min_topk: float | None = None, device: str = "cpu",
                  runtimes: Sequence[str] = ("onnx", "tensorrt"),
                  progress: Callable[[str], None] | None = None) -> VerifyReport:
    """Compares every exported embedder of ``bundle`` with its PyTorch reference.

    Args:
        bundle: A loaded bundle holding the ``torch`` files of its models.
        crops: Model id -> modality -> crops to embed (models without crops are an error).
        k: Length of the compared rankings.
        min_cosine: Threshold of the minimum cosine (None: :data:`DEFAULT_MIN_COSINE` per precision).
        min_topk: Threshold of the fraction of identical top-k lists (None: :data:`DEFAULT_MIN_TOPK`).
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
                files.append(FileParity(model.id, m, runtime, precision, e.path, len(cos), float(cos.min()),
                                        float(cos.mean()), float(np.abs(got[m] - ref[m]).max()), thr))
            thr = DEFAULT_MIN_TOPK[precision] if min_topk is None else min_topk
            for q, g in _directions(sorted(got)):
                a = topk_lists(ref[q], ref[g], k, exclude_self=q == g)
                b = topk_lists(got[q], got[g], k, exclude_self=q == g)
                same = float(np.mean(np.all(a == b, axis=1)))
                rankings.append(RankingParity(model.id, q, g, runtime, precision, len(a), a.shape[1], same, thr))
    return VerifyReport(tuple(files), tuple(rankings))


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
