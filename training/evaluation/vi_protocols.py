"""Visible-infrared evaluation protocols of SYSU-MM01 and RegDB, on extracted features (numpy only).

Both follow the protocols the visible-infrared seed papers report (LUPI, Alehdaghi et
al., Sec. 4.1 "Datasets" and Tables 1-2; Gao et al., Sec. 4.1-4.2 and Tables 2-3),
as implemented by the public evaluation code those papers build on (Wu et al.'s
SYSU-MM01 code as ported by Ye et al. in AGW, ``eval_sysu`` / ``eval_regdb``):

:func:`sysu_evaluation` (SYSU-MM01, Wu et al. ICCV 2017):

* Queries: every infrared image of the test identities (cameras 3 and 6), in both
  modes. Gallery, redrawn in each of ``trials`` (10) random trials: for every
  identity and every visible gallery camera (all-search: 1, 2, 4, 5; indoor-search:
  1, 2), ``shots`` random images (single-shot 1, multi-shot 10; fewer when the
  folder has fewer). LUPI Sec. 4.1: "single-shot ... select a random image from each
  person's identity ..., multi-shot ... ten images"; Gao Sec. 4.2: "repeated the
  final evaluation 10 times, randomly segmented each time with different gallery sets".
* Same-location exclusion: cameras 2 and 3 share a location, so a camera-3 query
  ignores the camera-2 gallery images (all of them, as ``remove = (q_camid == 3) &
  (g_camids == 2)`` of the standard code does; Wu et al.: probe images of camera 3
  skip gallery images of camera 2).
* CMC as the standard code computes it: the ranked gallery is reduced to distinct
  identities (first occurrence) and rank-k is the share of queries whose identity is
  among the first k identities. mAP and mINP over the whole (admissible) gallery.
* The reverse direction (visible query -> infrared gallery), which the standard code
  does not have, mirrors it: gallery drawn from the infrared cameras 3 and 6 (``shots``
  per identity-camera), queries all visible images of the mode's cameras, and a
  camera-2 query ignores the camera-3 gallery.

:func:`regdb_evaluation` (RegDB, Nguyen et al. 2017; LUPI Sec. 4.1: "ten trail
configurations ... Two different test settings are used – matching infrared (query)
with visible (gallery), and vice versa"): per trial, the trial's test images of one
modality are the queries and all its test images of the other modality the gallery
(no sampling, no exclusion), in both directions; CMC rank-k counts gallery images
(the standard ``eval_regdb``), mAP and mINP over the whole gallery; mean and std over
the trials (each trial evaluated with its own trained model).

Distances are Euclidean (Gao Sec. 4.3, "Euclidean distance is used"); on the
L2-normalised embeddings of the VI networks this ranks like cosine. Ties are
pessimistic by default (a tied wrong entry ranks first); ``ties="stable"`` breaks
them by gallery order as ``np.argsort`` in the standard code does (see
:mod:`.metrics`), for comparison with numbers of those codebases. Results have the shape of :mod:`.protocols`
results, percentages (0-100): ``{"rank-k": {"mean", "std", "values"}, "mAP", "mINP",
"cmc": [mean curve], "chance": {"mAP", "rank-1", "cmc"}, "num_query", ...}`` with one value per trial
(std ddof 0). ``"chance"`` is the level of an embedding without identity on the same queries,
galleries and exclusions, averaged over the trials (see :mod:`.chance`: mAP exact; CMC exact over
gallery images for RegDB, measured with random distances over identities for SYSU-MM01).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from reidstream.training.evaluation.metrics import (
    check_ties,
    cmc_all,
    mean_average_precision,
    mean_inverse_negative_penalty,
    pairwise_distances,
)
from reidstream.training.evaluation.chance import chance_cmc_identities, chance_cmc_images, chance_map
from reidstream.training.evaluation.protocols import FeatureSet, scenario_key

SYSU_VISIBLE_CAMERAS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}
"""Visible cameras of each SYSU-MM01 search mode."""
SYSU_INFRARED_CAMERAS = (3, 6)
"""Infrared cameras of SYSU-MM01 (queries in both modes)."""
SYSU_SAME_LOCATION = (3, 2)
"""(infrared camera, visible camera) at the same location: never matched with each other."""


def _check_feats(feats: Mapping[str, FeatureSet], names: Sequence[str], where: str) -> None:
    if not isinstance(feats, Mapping):
        raise ValueError(f"{where}: expected a mapping of modality name to FeatureSet, got {type(feats).__name__}")
    for m in names:
        fs = feats.get(m)
        if not isinstance(fs, FeatureSet) or fs.modality != m:
            got = "nothing" if fs is None else repr(getattr(fs, "modality", type(fs).__name__))
            raise ValueError(f"{where}[{m!r}]: expected a FeatureSet with modality {m!r}, got {got} "
                             f"(keys: {sorted(feats)})")


def _summary(values: Sequence[float]) -> dict:
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std()), "values": [float(v) for v in a]}


def _one(v: list):
    return v[0] if all(x == v[0] for x in v) else v


def identity_cmc(dist: np.ndarray, q_pids, g_pids, exclude=None, max_rank: int = 20, *,
                 ties: str = "pessimistic") -> tuple[np.ndarray, int]:
    """CMC over distinct gallery identities, as SYSU-MM01's standard evaluation code computes it.

    A query's rank is 1 + the number of wrong identities having an admissible gallery
    image at least as close as its nearest admissible true match (equivalently: the
    ranked list with later images of an already-seen identity removed). With
    ``ties="stable"`` an identity ranks at the first occurrence of its nearest image in
    the gallery-order stable sort, so a tied wrong identity counts only if its image
    comes earlier in the gallery (the standard code's ``np.unique(..., return_index=True)``
    on ``np.argsort`` output).

    Args:
        dist: ``Q x G`` distances.
        q_pids: ``Q`` query identities.
        g_pids: ``G`` gallery identities.
        exclude: Optional ``Q x G`` boolean mask of gallery entries a query ignores.
        max_rank: Length of the curve.
        ties: ``"pessimistic"`` or ``"stable"``.

    Returns:
        The ``max_rank`` cumulative match rates in ``[0, 1]`` and the number of queries
        skipped for lack of an admissible true match.

    Raises:
        ValueError: On malformed inputs or if no query has an admissible true match.
    """
    dist = np.asarray(dist, dtype=np.float64)
    g_pids = np.asarray(g_pids)
    if dist.ndim != 2 or g_pids.shape != (dist.shape[1],):
        raise ValueError(f"g_pids: expected one identity per gallery column of dist {dist.shape}, "
                         f"got shape {g_pids.shape}")
    ids, codes = np.unique(g_pids, return_inverse=True)
    codes = codes.reshape(-1)
    if exclude is not None:
        exclude = np.asarray(exclude)
        if exclude.dtype != np.bool_ or exclude.shape != dist.shape:
            raise ValueError(f"exclude: expected a boolean array of shape {dist.shape}, got {exclude.dtype} "
                             f"array of shape {exclude.shape}")
        dist = np.where(exclude, np.inf, dist)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(ids)))
    dmin = np.minimum.reduceat(dist[:, order], starts, axis=1)  # Q x identities
    avail = np.isfinite(dmin)
    first = None
    if check_ties(ties) == "stable":  # gallery column of each identity's first nearest image
        near = dist[:, order] == np.repeat(dmin, np.bincount(codes, minlength=len(ids)), axis=1)
        first = np.minimum.reduceat(np.where(near, order[None, :], len(codes)), starts, axis=1)
    q = np.asarray(q_pids)
    has_true = (avail & (ids[None, :] == q[:, None])).any(axis=1)
    cmc = cmc_all(np.where(avail, dmin, 0.0), q, ids, exclude=~avail, max_rank=max_rank, ties=ties,
                  tie_order=first)
    return cmc, int((~has_true).sum())


def _metrics(query: FeatureSet, gallery: FeatureSet, exclude, metric: str, max_rank: int,
             per_identity: bool, ties: str = "pessimistic") -> tuple[np.ndarray, float, float, int]:
    dist = pairwise_distances(query.embeddings, gallery.embeddings, metric)
    if per_identity:
        cmc, skipped = identity_cmc(dist, query.pids, gallery.pids, exclude, max_rank, ties=ties)
    else:
        cmc = cmc_all(dist, query.pids, gallery.pids, exclude, max_rank, ties=ties)
        adm = np.ones(dist.shape, bool) if exclude is None else ~exclude
        skipped = int((~(adm & (query.pids[:, None] == gallery.pids[None, :])).any(axis=1)).sum())
    ap = mean_average_precision(dist, query.pids, gallery.pids, exclude=exclude, max_per_identity=None, ties=ties)[0]
    inp = mean_inverse_negative_penalty(dist, query.pids, gallery.pids, exclude=exclude, ties=ties)
    return 100.0 * cmc, 100.0 * ap, 100.0 * inp, skipped


def _result(query: str, gallery: str, curves, maps, inps, ranks, extra: dict, chance: tuple[list, list]) -> dict:
    curves = np.asarray(curves)
    out = {"query": query, "gallery": gallery, **extra}
    for k in ranks:
        out[f"rank-{k}"] = _summary(curves[:, k - 1])
    out["mAP"] = _summary(maps)
    out["mINP"] = _summary(inps)
    out["cmc"] = [float(v) for v in curves.mean(axis=0)]
    chance_maps, chance_curves = chance
    curve = 100.0 * np.mean(chance_curves, axis=0)
    out["chance"] = {"mAP": float(100.0 * np.mean(chance_maps)), "rank-1": float(curve[0]),
                     "cmc": [float(v) for v in curve]}
    return out


def _check_common(metric: str, ranks, max_rank) -> tuple[tuple[int, ...], int]:
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"metric: expected 'euclidean' or 'cosine', got {metric!r}")
    ranks = tuple(ranks)
    if not ranks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in ranks):
        raise ValueError(f"ranks: expected positive integers, got {ranks!r}")
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise ValueError(f"max_rank: expected a positive integer, got {max_rank!r}")
    return ranks, max(int(max_rank), max(ranks))


def draw_gallery(pool: FeatureSet, shots: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``shots`` random images (fewer if it has fewer) of every (identity, camera) of ``pool``."""
    keys = np.stack([pool.pids, pool.camids], axis=1)
    groups = np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1)
    picks = [rng.choice(np.flatnonzero(groups == g), min(shots, int((groups == g).sum())), replace=False)
             for g in range(int(groups.max()) + 1)]
    return np.sort(np.concatenate(picks))


def sysu_evaluation(feats: Mapping[str, FeatureSet], *, mode: str = "all", shots: int = 1, trials: int = 10,
                    seed: int = 0, directions: Sequence[tuple[str, str]] | None = None, visible: str = "rgb",
                    infrared: str = "ir", metric: str = "euclidean", ranks: Sequence[int] = (1, 10, 20),
                    max_rank: int = 20, ties: str = "pessimistic") -> dict[str, dict]:
    """SYSU-MM01 all-search / indoor-search, single-shot / multi-shot, over random gallery trials.

    See the module docstring for the protocol (LUPI Sec. 4.1, Gao Sec. 4.1-4.2, the
    standard SYSU-MM01 code).

    Args:
        feats: Test-set features by modality; ``camids`` are SYSU camera numbers (1-6).
        mode: ``"all"`` (visible cameras 1, 2, 4, 5) or ``"indoor"`` (1, 2).
        shots: Gallery images per identity and camera: 1 (single-shot) or 10 (multi-shot).
        trials: Random gallery draws (10 in the papers).
        seed: Seed of the draws; trial ``t`` uses ``default_rng([seed, t])``.
        directions: ``(query, gallery)`` modality pairs; default both,
            ``((infrared, visible), (visible, infrared))``.
        visible: Name of the visible modality.
        infrared: Name of the infrared modality.
        metric: ``"euclidean"`` (Gao Sec. 4.3) or ``"cosine"``.
        ranks: Ranks reported as ``"rank-k"``.
        max_rank: Length of the mean CMC curve (at least ``max(ranks)``).
        ties: ``"pessimistic"`` (default) or ``"stable"`` (gallery order, as the standard code).

    Returns:
        Per direction key (``"Q:ir G:rgb"``, ``"Q:rgb G:ir"``): ``{"query", "gallery",
        "mode", "shots", "trials", "seed", "metric", "ties", "num_query", "num_gallery"`` (per
        trial), ``"num_identities"`` (gallery), ``"num_skipped_queries"``, ``"rank-k",
        "mAP", "mINP": {"mean", "std", "values"}`` in %, ``"cmc"``: mean curve in %,
        ``"chance"``: ``{"mAP", "rank-1", "cmc"}`` in % for random rankings of the same galleries}.

    Raises:
        ValueError: Bad arguments, missing feature sets, a direction without queries or
            gallery images in its cameras, or no query with an admissible true match.
    """
    if mode not in SYSU_VISIBLE_CAMERAS:
        raise ValueError(f"mode: expected 'all' or 'indoor', got {mode!r}")
    for name, v in (("shots", shots), ("trials", trials)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    ranks, max_rank = _check_common(metric, ranks, max_rank)
    check_ties(ties)
    if visible == infrared:
        raise ValueError(f"infrared: expected a name other than visible ({visible!r})")
    directions = ((infrared, visible), (visible, infrared)) if directions is None else tuple(map(tuple, directions))
    if not directions or any(set(d) != {visible, infrared} or len(d) != 2 for d in directions):
        raise ValueError(f"directions: expected (query, gallery) pairs of {visible!r} and {infrared!r}, "
                         f"got {directions!r}")
    _check_feats(feats, (visible, infrared), "feats")
    cams = {visible: SYSU_VISIBLE_CAMERAS[mode], infrared: SYSU_INFRARED_CAMERAS}
    out = {}
    for q_mod, g_mod in directions:
        key = scenario_key(q_mod, g_mod)
        for name, m in (("query", q_mod), ("gallery", g_mod)):
            if not np.isin(feats[m].camids, cams[m]).any():
                raise ValueError(f"feats[{m!r}]: no images from cameras {cams[m]} for the {name} of {key} "
                                 f"({mode}-search); camids present: {sorted(set(feats[m].camids.tolist()))}")
        query = feats[q_mod].select(np.isin(feats[q_mod].camids, cams[q_mod]))
        pool = feats[g_mod].select(np.isin(feats[g_mod].camids, cams[g_mod]))
        q_cam, g_cam = SYSU_SAME_LOCATION if q_mod == infrared else SYSU_SAME_LOCATION[::-1]
        curves, maps, inps, sizes, skipped, n_ids = [], [], [], [], 0, 0
        chance_maps, chance_curves = [], []
        draws = -(-10 // int(trials))  # at least 10 random rankings in all for the chance CMC
        for t in range(int(trials)):
            gallery = pool.select(draw_gallery(pool, int(shots), np.random.default_rng([int(seed), t])))
            exclude = (query.camids[:, None] == q_cam) & (gallery.camids[None, :] == g_cam)
            try:
                cmc, ap, inp, skipped = _metrics(query, gallery, exclude if exclude.any() else None, metric,
                                                 max_rank, per_identity=True, ties=ties)
            except ValueError as e:
                raise ValueError(f"feats: {key}, {mode}-search, trial {t}: {e}") from None
            curves.append(cmc)
            maps.append(ap)
            inps.append(inp)
            sizes.append(len(gallery))
            chance_maps.append(chance_map(query.pids, gallery.pids, exclude))
            chance_curves.append(chance_cmc_identities(query.pids, gallery.pids, exclude if exclude.any() else None,
                                                       max_rank, draws=draws,
                                                       rng=np.random.default_rng([int(seed), t, 1])))
            n_ids = len(np.unique(gallery.pids))
        out[key] = _result(q_mod, g_mod, curves, maps, inps, ranks, {
            "mode": mode, "shots": int(shots), "trials": int(trials), "seed": int(seed), "metric": metric,
            "ties": ties, "num_query": len(query), "num_gallery": _one(sizes), "num_identities": n_ids,
            "num_skipped_queries": skipped}, (chance_maps, chance_curves))
    return out


def regdb_evaluation(per_trial: Sequence[Mapping[str, FeatureSet]], *, visible: str = "rgb",
                     infrared: str = "thermal", metric: str = "euclidean", ranks: Sequence[int] = (1, 10, 20),
                     max_rank: int = 20, ties: str = "pessimistic") -> dict[str, dict]:
    """RegDB visible->thermal and thermal->visible over trials (see the module docstring).

    Args:
        per_trial: One mapping per trial (its own model's features of its own test split),
            modality name -> :class:`FeatureSet`; a single trial is allowed (std 0).
        visible: Name of the visible modality.
        infrared: Name of the thermal modality.
        metric: ``"euclidean"`` or ``"cosine"``.
        ranks: Ranks reported as ``"rank-k"``.
        max_rank: Length of the mean CMC curve (at least ``max(ranks)``).
        ties: ``"pessimistic"`` (default) or ``"stable"`` (gallery order, as ``eval_regdb``).

    Returns:
        ``{"Q:rgb G:thermal": ..., "Q:thermal G:rgb": ...}`` shaped like
        :func:`sysu_evaluation` results, one value per trial.

    Raises:
        ValueError: Bad arguments, no trials, a trial lacking a modality, or a trial
            where no query has a true match.
    """
    ranks, max_rank = _check_common(metric, ranks, max_rank)
    check_ties(ties)
    if visible == infrared:
        raise ValueError(f"infrared: expected a name other than visible ({visible!r})")
    if isinstance(per_trial, Mapping) or not isinstance(per_trial, Sequence) or not per_trial:
        raise ValueError("per_trial: expected a non-empty list of {modality: FeatureSet}, one per trial")
    for t, feats in enumerate(per_trial):
        _check_feats(feats, (visible, infrared), f"per_trial[{t}]")
    out = {}
    for q_mod, g_mod in ((visible, infrared), (infrared, visible)):
        key = scenario_key(q_mod, g_mod)
        curves, maps, inps, nq, ng, nid, skipped, chance_maps, chance_curves = [], [], [], [], [], [], [], [], []
        for t, feats in enumerate(per_trial):
            query, gallery = feats[q_mod], feats[g_mod]
            try:
                cmc, ap, inp, skip = _metrics(query, gallery, None, metric, max_rank, per_identity=False, ties=ties)
            except ValueError as e:
                raise ValueError(f"per_trial[{t}]: {key}: {e}") from None
            curves.append(cmc)
            maps.append(ap)
            inps.append(inp)
            nq.append(len(query))
            ng.append(len(gallery))
            nid.append(len(np.unique(gallery.pids)))
            skipped.append(skip)
            chance_maps.append(chance_map(query.pids, gallery.pids))
            chance_curves.append(chance_cmc_images(query.pids, gallery.pids, max_rank=max_rank))
        out[key] = _result(q_mod, g_mod, curves, maps, inps, ranks, {
            "trials": len(per_trial), "metric": metric, "ties": ties, "num_query": _one(nq), "num_gallery": _one(ng),
            "num_identities": _one(nid), "num_skipped_queries": _one(skipped)},
            (chance_maps, chance_curves))
    return out
