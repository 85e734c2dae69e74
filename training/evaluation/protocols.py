"""Evaluation protocol of Hafner et al., CVIU 2022, Sec. 4.3 (Tables 1-5), on extracted features.

* Rank-1/5/10: single-gallery shot, one random gallery image per identity, repeated 10
  times; the identical image (single-modal, Tables 1-2) or the paired image of the same
  capture in the parallel modality (cross-modal, Tables 3-5) is excluded from sampling.
* mAP: at most 20 random gallery images per person, repeated likewise.
* 3-fold cross-validation: :func:`aggregate` pools the per-repeat values of the folds.

Results are JSON-able dicts with percentages (0-100), as in the paper's tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from reidstream.training.evaluation.metrics import (
    cmc_from_ranks,
    mean_average_precision,
    pairwise_distances,
    single_gallery_shot_ranks,
)


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Embeddings of one modality with their labels.

    Attributes:
        embeddings: ``N x D`` finite float embeddings.
        pids: ``N`` integer person ids.
        camids: ``N`` integer camera ids.
        keys: ``N`` integer capture ids: a colour image and its paired depth image share
            a key; queries are never matched against gallery entries with their own key.
        modality: Modality name, e.g. ``"rgb"`` or ``"depth"``.

    Raises:
        ValueError: Naming the field, when a field is malformed or lengths differ.
    """

    embeddings: np.ndarray
    pids: np.ndarray
    camids: np.ndarray
    keys: np.ndarray
    modality: str

    def __post_init__(self) -> None:
        emb = np.asarray(self.embeddings)
        if emb.ndim != 2 or len(emb) == 0 or not np.issubdtype(emb.dtype, np.floating):
            raise ValueError(f"FeatureSet.embeddings: expected a non-empty N x D float array, "
                             f"got {emb.dtype} array of shape {emb.shape}")
        if not np.isfinite(emb).all():
            raise ValueError("FeatureSet.embeddings: expected finite values, got NaN or inf")
        object.__setattr__(self, "embeddings", emb)
        for name in ("pids", "camids", "keys"):
            a = np.asarray(getattr(self, name))
            if a.shape != (len(emb),) or not np.issubdtype(a.dtype, np.integer):
                raise ValueError(f"FeatureSet.{name}: expected {len(emb)} integers (one per embedding), "
                                 f"got {a.dtype} array of shape {a.shape}")
            object.__setattr__(self, name, a)
        if not isinstance(self.modality, str) or not self.modality:
            raise ValueError(f"FeatureSet.modality: expected a non-empty string, got {self.modality!r}")

    def __len__(self) -> int:
        return len(self.embeddings)

    def select(self, index) -> FeatureSet:
        """The subset at ``index`` (boolean mask or integer indices)."""
        return FeatureSet(self.embeddings[index], self.pids[index], self.camids[index], self.keys[index],
                          self.modality)


def scenario_key(query_modality: str, gallery_modality: str) -> str:
    """Name of a query/gallery scenario, e.g. ``"Q:rgb G:depth"``."""
    return f"Q:{query_modality} G:{gallery_modality}"


def hafner_protocol(query: FeatureSet, gallery: FeatureSet, *, repeats: int = 10, ranks: Sequence[int] = (1, 5, 10),
                    max_per_identity: int | None = 20, metric: str = "euclidean", seed: int = 0,
                    max_rank: int = 20, ties: str = "pessimistic") -> dict:
    """Rank-k and mAP of one query/gallery scenario (Hafner et al., Sec. 4.3).

    Gallery entries with the query's capture key are excluded (identical image when
    ``query is gallery``, paired image across modalities).

    Args:
        query: Query features.
        gallery: Gallery features (may be ``query`` itself).
        repeats: Random gallery draws for CMC and mAP.
        ranks: Ranks reported as ``"rank-k"``.
        max_per_identity: Gallery images per person for mAP (``None``: all).
        metric: ``"euclidean"`` (the paper's) or ``"cosine"``.
        seed: Seed of the random draws; equal seeds give equal results.
        max_rank: Length of the mean CMC curve (raised to ``max(ranks)`` if smaller).
        ties: ``"pessimistic"`` (default: a wrong gallery image at the same distance as a
            correct one ranks first) or ``"stable"`` (gallery order breaks ties, as
            ``np.argsort`` in open-reid, the authors' code base); see :mod:`.metrics`.

    Returns:
        ``{"query", "gallery", "num_query", "num_gallery", "num_identities"`` (gallery
        identities), ``"num_skipped_queries"`` (no admissible true match), ``"repeats",
        "metric", "ties", "max_per_identity", "seed", "rank-k": {"mean", "std", "values"}, ...,
        "mAP": {...}, "cmc": [mean curve in %], "chance": {"mAP", "rank-1", "cmc"}}``; std is over repeats
        (ddof 0); the mAP has one value when nobody has more than ``max_per_identity`` gallery images
        (nothing is drawn at random, so there is no spread). ``"chance"`` is the level of an embedding that carries no identity: its CMC is exact
        for the single-gallery-shot draw (one true match among ``G`` admissible identities: rank-k =
        k / G, averaged over queries), its mAP is measured with random distances on the same gallery
        composition (same exclusions, same ``max_per_identity`` draws).

    Raises:
        ValueError: On bad arguments or if no query has an admissible true match.
    """
    for name, fs in (("query", query), ("gallery", gallery)):
        if not isinstance(fs, FeatureSet):
            raise ValueError(f"{name}: expected a FeatureSet, got {type(fs).__name__}")
    ranks = tuple(ranks)
    if not ranks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in ranks):
        raise ValueError(f"ranks: expected positive integers, got {ranks!r}")
    max_rank = max(int(max_rank), max(ranks))
    dist = pairwise_distances(query.embeddings, gallery.embeddings, metric)
    exclude = query.keys[:, None] == gallery.keys[None, :]
    cmc_rng, map_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    rank_table = single_gallery_shot_ranks(dist, query.pids, gallery.pids, exclude=exclude, repeats=repeats,
                                           rng=cmc_rng, ties=ties)
    cmc = 100.0 * cmc_from_ranks(rank_table, max_rank)
    # Without more than max_per_identity images of anyone there is nothing to draw: one mAP, no spread to report.
    _, per_id = np.unique(gallery.pids, return_counts=True)
    drawn = max_per_identity is not None and int(per_id.max(initial=0)) > max_per_identity
    maps = 100.0 * mean_average_precision(dist, query.pids, gallery.pids, exclude=exclude,
                                          max_per_identity=max_per_identity, repeats=repeats if drawn else 1,
                                          rng=map_rng, ties=ties)
    result = {
        "query": query.modality,
        "gallery": gallery.modality,
        "num_query": len(query),
        "num_gallery": len(gallery),
        "num_identities": int(len(np.unique(gallery.pids))),
        "num_skipped_queries": int((rank_table[0] == 0).sum()),
        "repeats": int(repeats),
        "metric": metric,
        "ties": ties,
        "max_per_identity": max_per_identity,
        "seed": int(seed),
    }
    for k in ranks:
        result[f"rank-{k}"] = _stats(cmc[:, k - 1])
    result["mAP"] = _stats(maps)
    result["cmc"] = [float(v) for v in cmc.mean(axis=0)]
    result["chance"] = _chance(query, gallery, exclude, max_per_identity, max_rank, repeats, seed)
    return result


def _chance(query: FeatureSet, gallery: FeatureSet, exclude: np.ndarray, max_per_identity: int | None,
            max_rank: int, repeats: int, seed: int) -> dict:
    """Chance CMC (exact, single-gallery-shot) and mAP (random distances) of one scenario, in %."""
    admissible = ~exclude
    gpids = np.unique(gallery.pids)
    # identities with an admissible gallery image, per query; a query counts only with its own among them
    has = np.stack([(admissible & (gallery.pids[None, :] == p)).any(axis=1) for p in gpids], axis=1)
    own = has[np.arange(len(query)), np.searchsorted(gpids, query.pids).clip(0, len(gpids) - 1)] \
        & np.isin(query.pids, gpids)
    n = has.sum(axis=1)[own].astype(float)
    k = np.arange(1, max_rank + 1, dtype=float)
    cmc = np.minimum(k[None, :] / n[:, None], 1.0).mean(axis=0) if len(n) else np.zeros(max_rank)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    rand = rng.random(exclude.shape)
    maps = mean_average_precision(rand, query.pids, gallery.pids, exclude=exclude, max_per_identity=max_per_identity,
                                  repeats=max(1, min(int(repeats), 10)), rng=rng)
    return {"mAP": float(100.0 * np.mean(maps)), "rank-1": float(100.0 * cmc[0]),
            "cmc": [float(100.0 * v) for v in cmc]}


def single_modal_evaluation(fs: FeatureSet, **kw) -> dict:
    """Single-modal scenario (Tables 1-2): query = gallery = ``fs``, the identical image excluded.

    Args:
        fs: Features of one modality.
        **kw: Passed to :func:`hafner_protocol`.
    """
    return hafner_protocol(fs, fs, **kw)


def cross_modal_evaluation(features: Mapping[str, FeatureSet], modalities: Sequence[str] = ("rgb", "depth"),
                           **kw) -> dict[str, dict]:
    """Cross-modal scenarios in both directions (Tables 3-5), paired images excluded.

    Args:
        features: Feature sets by modality name; each set's ``modality`` must equal its key.
        modalities: Modalities to pair; every ordered pair of distinct ones is evaluated.
        **kw: Passed to :func:`hafner_protocol`.

    Returns:
        Results keyed ``"Q:rgb G:depth"``, ``"Q:depth G:rgb"``, ...
    """
    modalities = tuple(modalities)
    if len(set(modalities)) < 2:
        raise ValueError(f"modalities: expected at least two distinct names, got {modalities!r}")
    for m in modalities:
        if m not in features:
            raise ValueError(f"features: expected a FeatureSet for modality {m!r}, got keys {sorted(features)}")
        if not isinstance(features[m], FeatureSet) or features[m].modality != m:
            raise ValueError(f"features[{m!r}]: expected a FeatureSet with modality {m!r}, "
                             f"got {getattr(features[m], 'modality', type(features[m]).__name__)!r}")
    return {scenario_key(q, g): hafner_protocol(features[q], features[g], **kw)
            for q in modalities for g in modalities if q != g}


def aggregate(results: Sequence[dict]) -> dict:
    """Pools the folds of a cross-validation (Hafner et al., Sec. 4.3: 3 folds) into one result.

    Per-repeat values of every metric are concatenated and summarised again (pooled mean
    and std); ``"fold_means"`` keeps each fold's mean. CMC curves are averaged. Other
    entries (counts, seed, ...) keep their value when all folds agree, else become the
    list of per-fold values.

    Args:
        results: Results of :func:`hafner_protocol` for the same scenario, one per fold.

    Returns:
        A result of the same structure plus ``"folds"`` and per-metric ``"fold_means"``.

    Raises:
        ValueError: If ``results`` is empty, the scenarios differ, or metrics/curves mismatch.
    """
    results = list(results)
    if not results or not all(isinstance(r, Mapping) for r in results):
        raise ValueError("results: expected a non-empty list of protocol result dicts")
    first = results[0]
    for name in ("query", "gallery"):
        if any(r.get(name) != first.get(name) for r in results):
            raise ValueError(f"results: expected every fold to have the same {name!r}, "
                             f"got {[r.get(name) for r in results]}")
    metrics = [k for k, v in first.items() if isinstance(v, Mapping) and "values" in v]
    out: dict = {"folds": len(results)}
    for k in first:
        if k not in metrics and k not in ("cmc", "chance"):
            per = [r.get(k) for r in results]
            out[k] = per[0] if all(v == per[0] for v in per) else per
    for k in metrics:
        if any(not isinstance(r.get(k), Mapping) or "values" not in r[k] for r in results):
            raise ValueError(f"results: expected metric {k!r} with per-repeat 'values' in every fold")
        pooled = _stats(np.concatenate([np.asarray(r[k]["values"], dtype=float) for r in results]))
        pooled["fold_means"] = [float(r[k]["mean"]) for r in results]
        out[k] = pooled
    if all(isinstance(r.get("chance"), Mapping) for r in results):
        keys = [k for k in first["chance"] if all(k in r["chance"] for r in results)]
        out["chance"] = {k: float(np.mean([r["chance"][k] for r in results])) if k != "cmc" else
                         [float(v) for v in np.mean([r["chance"]["cmc"] for r in results], axis=0)] for k in keys}
    if "cmc" in first:
        curves = [np.asarray(r.get("cmc", []), dtype=float) for r in results]
        if any(c.shape != curves[0].shape for c in curves):
            raise ValueError(f"results: expected CMC curves of equal length, got {[len(c) for c in curves]}")
        out["cmc"] = [float(v) for v in np.mean(curves, axis=0)]
    return out


def aggregate_scenarios(results: Sequence[Mapping[str, dict]]) -> dict[str, dict]:
    """:func:`aggregate` per scenario over folds of :func:`cross_modal_evaluation` outputs."""
    results = list(results)
    if not results or any(set(r) != set(results[0]) for r in results):
        raise ValueError("results: expected a non-empty list of dicts with the same scenario keys")
    return {k: aggregate([r[k] for r in results]) for k in results[0]}


def _stats(values: np.ndarray) -> dict:
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std()), "values": [float(v) for v in values]}
