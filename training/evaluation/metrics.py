"""Re-identification metrics on a query x gallery distance matrix (numpy only).

Implements the evaluation of Hafner et al., "Cross-modal distillation for RGB-depth
person re-identification", CVIU 2022: distances in the embedded space (Sec. 3, Eq. 1-2),
single-gallery-shot CMC and mAP over randomly sampled galleries (Sec. 4.3), plus the
usual full-gallery CMC and mINP (Ye et al., "Deep learning for person re-identification:
a survey and outlook", TPAMI 2021) used by visible-infrared protocols.

Conventions shared by every function:

* ``dist`` is a ``Q x G`` array of finite distances (smaller = more similar);
  ``q_pids`` / ``g_pids`` are the identities of its rows / columns.
* ``exclude`` is an optional boolean ``Q x G`` mask of gallery entries a query must never
  be compared with (the identical image, or the paired image in the parallel modality).
* Ties (``ties=``): ``"pessimistic"`` (default) ranks a wrong gallery entry at exactly the
  same distance as a correct one *ahead* of it, so degenerate (collapsed) embeddings score
  at chance or below, never at 100 %. ``"stable"`` ranks tied entries in gallery order (the
  lower gallery column first), i.e. ``np.argsort(dist, kind="stable")``: what the common
  codebases (open-reid's ``cmc``/``mean_ap``, AGW's ``eval_sysu``/``eval_regdb``) compute
  with ``np.argsort(distmat, axis=1)`` whenever that sort keeps ties in index order (numpy's
  default sort does not promise it). Use it only to compare with numbers of those
  codebases: with ties, a result then depends on the gallery's file order.
* Random sampling uses ``rng`` (a ``numpy.random.Generator``, a seed, or ``None``).
"""

from __future__ import annotations

import numpy as np

_BLOCK = 1 << 22  # elements of a Q x W work array processed at once

TIES: tuple[str, ...] = ("pessimistic", "stable")
"""Tie-breaking rules of the ranking metrics (see the module docstring)."""


def check_ties(ties: str) -> str:
    """Returns ``ties`` if it is one of :data:`TIES`, else raises ValueError."""
    if ties not in TIES:
        raise ValueError(f"ties: expected one of {TIES}, got {ties!r}")
    return ties


def pairwise_distances(query: np.ndarray, gallery: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Distances between every query and gallery embedding (Hafner et al., Sec. 3, Eq. 1-2).

    Args:
        query: ``Q x D`` embeddings.
        gallery: ``G x D`` embeddings.
        metric: ``"euclidean"`` for ``d(a, b) = ||a - b||`` or ``"cosine"`` for
            ``1 - cos(a, b)`` (zero vectors count as orthogonal to everything).

    Returns:
        ``Q x G`` float64 distances.

    Raises:
        ValueError: If an input is not a finite 2-D array, the widths differ, or
            ``metric`` is unknown.
    """
    q = _matrix("query", query)
    g = _matrix("gallery", gallery)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"gallery: expected embeddings of width {q.shape[1]} like query, got {g.shape[1]}")
    if metric == "euclidean":
        centre = g.mean(axis=0) if len(g) else 0.0  # centring reduces cancellation in the expansion
        q, g = q - centre, g - centre
        sq = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * (q @ g.T)
        return np.sqrt(np.maximum(sq, 0.0))
    if metric == "cosine":
        qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        gn = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        return np.clip(1.0 - qn @ gn.T, 0.0, 2.0)
    raise ValueError(f"metric: expected 'euclidean' or 'cosine', got {metric!r}")


def average_precision(scores_sorted_matches: np.ndarray) -> float:
    """Average precision of one ranked list: mean of the precision at each correct match.

    Args:
        scores_sorted_matches: 1-D booleans, ``True`` where the gallery entry at that rank
            (best first) has the query's identity.

    Returns:
        AP in ``[0, 1]``; e.g. hits at ranks 1 and 3 give ``(1 + 2/3) / 2``.

    Raises:
        ValueError: If the list is not 1-D or holds no correct match.
    """
    hits = _hit_list(scores_sorted_matches)
    ranks = np.flatnonzero(hits) + 1.0
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def inverse_negative_penalty(scores_sorted_matches: np.ndarray) -> float:
    """INP of one ranked list: ``#correct / rank of the hardest correct match`` (Ye et al. 2021).

    Args:
        scores_sorted_matches: 1-D booleans in rank order, as for :func:`average_precision`.

    Returns:
        INP in ``(0, 1]``.

    Raises:
        ValueError: If the list is not 1-D or holds no correct match.
    """
    hits = _hit_list(scores_sorted_matches)
    return float(hits.sum() / (np.flatnonzero(hits)[-1] + 1))


def single_gallery_shot_ranks(dist, q_pids, g_pids, *, exclude=None, repeats: int = 10, rng=None,
                              ties: str = "pessimistic") -> np.ndarray:
    """Rank of the true identity per query and repeat in the single-gallery-shot setting (Sec. 4.3).

    In each repeat one gallery image per identity is drawn at random. The draw is shared
    by all queries, except that a query for which the drawn image is excluded gets another
    random admissible image of that identity instead: every gallery image receives a random
    key, and each query uses, per identity, its admissible image with the smallest key.
    Identities with no admissible image for a query drop out of that query's gallery.

    Args:
        dist: ``Q x G`` distances.
        q_pids: ``Q`` query identities.
        g_pids: ``G`` gallery identities.
        exclude: Optional ``Q x G`` boolean mask of forbidden gallery entries.
        repeats: Number of random gallery draws (>= 1).
        rng: ``numpy.random.Generator``, seed or ``None``.
        ties: ``"pessimistic"`` (a tied wrong identity ranks first) or ``"stable"`` (the
            drawn image with the lower gallery column ranks first).

    Returns:
        ``repeats x Q`` int array: 1-based rank of the query's identity among the drawn
        identities, or 0 where the query was skipped because its identity has no
        admissible gallery image.
    """
    p = _Problem(dist, q_pids, g_pids, exclude)
    repeats = _positive("repeats", repeats)
    stable = check_ties(ties) == "stable"
    rng = np.random.default_rng(rng)
    out = np.zeros((repeats, p.num_query), dtype=np.int64)
    for r in range(repeats):
        cols, width = p.draw(1, rng)
        starts = np.cumsum(width) - width
        for rows in p.blocks(len(cols)):
            dc, sel = p.compact(rows, cols, width, 1)
            dmin = np.minimum.reduceat(np.where(sel, dc, np.inf), starts, axis=1)
            avail = np.logical_or.reduceat(sel, starts, axis=1)
            # stable ties: each identity is represented by its one drawn image, at that image's gallery column
            order = np.minimum.reduceat(np.where(sel, cols[None, :], p.num_gallery), starts, axis=1) \
                if stable else None
            out[r, rows] = _first_hit_rank(dmin, avail, np.arange(p.num_ids)[None, :], p.target[rows], order)
    return out


def cmc_single_gallery_shot(dist, q_pids, g_pids, *, exclude=None, repeats: int = 10, max_rank: int = 20,
                            rng=None, ties: str = "pessimistic") -> np.ndarray:
    """Single-gallery-shot CMC, one curve per random gallery draw (Hafner et al., Sec. 4.3).

    See :func:`single_gallery_shot_ranks` for the sampling and exclusion rule. Queries
    whose identity has no admissible gallery image are skipped.

    Args:
        dist, q_pids, g_pids, exclude, repeats, rng, ties: As for :func:`single_gallery_shot_ranks`.
        max_rank: Length of each curve (>= 1).

    Returns:
        ``repeats x max_rank`` cumulative match rates in ``[0, 1]``; column ``r - 1`` is rank-r.

    Raises:
        ValueError: On malformed inputs, or if no query has an admissible true match.
    """
    ranks = single_gallery_shot_ranks(dist, q_pids, g_pids, exclude=exclude, repeats=repeats, rng=rng, ties=ties)
    return cmc_from_ranks(ranks, max_rank)


def cmc_all(dist, q_pids, g_pids, exclude=None, max_rank: int = 20, *, ties: str = "pessimistic",
            tie_order=None) -> np.ndarray:
    """Standard CMC over the full (admissible) gallery, no sampling: rank of the first correct match.

    Args:
        dist, q_pids, g_pids, exclude: As for :func:`single_gallery_shot_ranks`.
        max_rank: Length of the curve (>= 1).
        ties: ``"pessimistic"`` or ``"stable"`` (see the module docstring).
        tie_order: With ``ties="stable"``: integer keys (``G`` or ``Q x G``) ordering tied
            entries, smallest first; default the gallery column index.

    Returns:
        ``max_rank`` cumulative match rates in ``[0, 1]``.

    Raises:
        ValueError: On malformed inputs, or if no query has an admissible true match.
    """
    p = _Problem(dist, q_pids, g_pids, exclude)
    order = None
    if check_ties(ties) == "stable":
        order = np.arange(p.num_gallery) if tie_order is None else np.asarray(tie_order)
        if not np.issubdtype(order.dtype, np.integer) or order.shape not in ((p.num_gallery,), p.dist.shape):
            raise ValueError(f"tie_order: expected integer keys of shape ({p.num_gallery},) or {p.dist.shape}, "
                             f"got {order.dtype} array of shape {order.shape}")
        order = np.broadcast_to(order, p.dist.shape)
    ranks = np.zeros(p.num_query, dtype=np.int64)
    for rows in p.blocks(p.num_gallery):
        adm = p.admissible(rows, slice(None))
        ranks[rows] = _first_hit_rank(p.dist[rows], adm, p.codes[None, :], p.target[rows],
                                      None if order is None else order[rows])
    return cmc_from_ranks(ranks[None, :], max_rank)[0]


def cmc_from_ranks(ranks: np.ndarray, max_rank: int = 20) -> np.ndarray:
    """Cumulative match rates from ``... x Q`` 1-based ranks (0 = skipped query).

    Raises:
        ValueError: If ``max_rank`` < 1 or no query was evaluated.
    """
    ranks = np.asarray(ranks)
    max_rank = _positive("max_rank", max_rank)
    valid = ranks > 0
    if not valid.any():
        raise ValueError("q_pids: expected at least one query with an admissible true match in the gallery, got none")
    hits = (ranks[..., None] <= np.arange(1, max_rank + 1)) & valid[..., None]
    return hits.sum(axis=-2) / valid.sum(axis=-1, keepdims=True)


def mean_average_precision(dist, q_pids, g_pids, *, exclude=None, max_per_identity: int | None = 20,
                           repeats: int = 10, rng=None, ties: str = "pessimistic") -> np.ndarray:
    """mAP with at most ``max_per_identity`` randomly selected gallery images per person (Sec. 4.3).

    In each repeat each query sees, per identity, up to ``max_per_identity`` random
    admissible gallery images (same random keys for all queries as in
    :func:`single_gallery_shot_ranks`, so an excluded image is replaced by another one of
    the same person when available). AP is computed per query over this gallery, ties
    broken by ``ties``; queries without any correct match are skipped.

    Args:
        dist, q_pids, g_pids, exclude, rng, ties: As for :func:`single_gallery_shot_ranks`.
        max_per_identity: Cap per identity (>= 1), or ``None`` for the full admissible
            gallery, in which case a single (deterministic) repeat is computed.
        repeats: Number of random selections (>= 1).

    Returns:
        Per-repeat mAP in ``[0, 1]``, shape ``(repeats,)`` (``(1,)`` without a cap).

    Raises:
        ValueError: On malformed inputs, or if no query has an admissible true match.
    """
    p = _Problem(dist, q_pids, g_pids, exclude)
    cap = None if max_per_identity is None else _positive("max_per_identity", max_per_identity)
    repeats = 1 if cap is None else _positive("repeats", repeats)
    stable = check_ties(ties) == "stable"
    rng = np.random.default_rng(rng)
    out = np.empty(repeats)
    for r in range(repeats):
        cols, width = p.draw(cap, rng)
        code_c = np.repeat(np.arange(p.num_ids), width)
        aps = np.full(p.num_query, np.nan)
        for rows in p.blocks(len(cols)):
            dc, sel = p.compact(rows, cols, width, cap)
            hits = _sorted_hits(dc, sel, code_c[None, :] == p.target[rows, None], cols[None, :] if stable else None)
            n = hits.sum(1)
            prec = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
            aps[rows] = np.where(n > 0, (prec * hits).sum(1) / np.maximum(n, 1), np.nan)
        if np.isnan(aps).all():
            raise ValueError("q_pids: expected at least one query with an admissible true match in the gallery, "
                             "got none")
        out[r] = np.nanmean(aps)
    return out


def mean_inverse_negative_penalty(dist, q_pids, g_pids, *, exclude=None, ties: str = "pessimistic") -> float:
    """mINP over the full admissible gallery (Ye et al., TPAMI 2021); skips queries without a match.

    Ties are broken by ``ties`` (``"pessimistic"`` or ``"stable"``, see the module docstring).

    Raises:
        ValueError: On malformed inputs, or if no query has an admissible true match.
    """
    p = _Problem(dist, q_pids, g_pids, exclude)
    order = np.arange(p.num_gallery)[None, :] if check_ties(ties) == "stable" else None
    inp = np.full(p.num_query, np.nan)
    for rows in p.blocks(p.num_gallery):
        adm = p.admissible(rows, slice(None))
        hits = _sorted_hits(p.dist[rows], adm, p.codes[None, :] == p.target[rows, None], order)
        n = hits.sum(1)
        last = hits.shape[1] - np.argmax(hits[:, ::-1], axis=1)
        inp[rows] = np.where(n > 0, n / last, np.nan)
    if np.isnan(inp).all():
        raise ValueError("q_pids: expected at least one query with an admissible true match in the gallery, got none")
    return float(np.nanmean(inp))


minp = mean_inverse_negative_penalty


class _Problem:
    """Validated inputs plus the identity grouping of the gallery."""

    def __init__(self, dist, q_pids, g_pids, exclude) -> None:
        self.dist = np.asarray(dist, dtype=np.float64)
        if self.dist.ndim != 2 or 0 in self.dist.shape or not np.isfinite(self.dist).all():
            raise ValueError(f"dist: expected a non-empty, finite Q x G array, got shape {self.dist.shape}"
                             + (" with non-finite values" if self.dist.ndim == 2 and self.dist.size else ""))
        self.num_query, self.num_gallery = self.dist.shape
        q, g = np.asarray(q_pids), np.asarray(g_pids)
        if q.shape != (self.num_query,):
            raise ValueError(f"q_pids: expected shape ({self.num_query},) to match dist, got {q.shape}")
        if g.shape != (self.num_gallery,):
            raise ValueError(f"g_pids: expected shape ({self.num_gallery},) to match dist, got {g.shape}")
        if exclude is not None:
            exclude = np.asarray(exclude)
            if exclude.dtype != np.bool_ or exclude.shape != self.dist.shape:
                raise ValueError(f"exclude: expected a boolean array of shape {self.dist.shape}, "
                                 f"got {exclude.dtype} array of shape {exclude.shape}")
        self.exclude = exclude
        ids, self.codes = np.unique(g, return_inverse=True)
        self.codes = self.codes.reshape(-1)
        self.num_ids = len(ids)
        self.counts = np.bincount(self.codes, minlength=self.num_ids)
        pos = np.minimum(np.searchsorted(ids, q), self.num_ids - 1)
        self.target = np.where(ids[pos] == q, pos, -1)  # index of the query's identity, -1 if absent
        # the most images of one identity any single query has excluded: bounds the replacements
        self.extra = np.zeros(self.num_ids, dtype=np.int64)
        if exclude is not None:
            order = np.argsort(self.codes, kind="stable")
            starts = np.cumsum(self.counts) - self.counts
            for rows in self.blocks(self.num_gallery):
                per = np.add.reduceat(exclude[rows][:, order].astype(np.int64), starts, axis=1)
                self.extra = np.maximum(self.extra, per.max(axis=0))

    def blocks(self, width: int):
        step = max(1, _BLOCK // max(width, 1))
        return [slice(i, min(i + step, self.num_query)) for i in range(0, self.num_query, step)]

    def admissible(self, rows: slice, cols) -> np.ndarray:
        n = len(range(*rows.indices(self.num_query)))
        if self.exclude is None:
            w = self.num_gallery if isinstance(cols, slice) else len(cols)
            return np.ones((n, w), dtype=bool)
        return ~self.exclude[rows][:, cols]

    def draw(self, cap: int | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Gallery columns grouped by identity in random order, enough per identity for ``cap`` picks."""
        keys = rng.random(self.num_gallery) if cap is not None else np.zeros(self.num_gallery)
        order = np.lexsort((keys, self.codes))
        width = self.counts if cap is None else np.minimum(self.counts, cap + self.extra)
        starts = np.repeat(np.cumsum(self.counts) - self.counts, width)
        offsets = np.arange(width.sum()) - np.repeat(np.cumsum(width) - width, width)
        return order[starts + offsets], width

    def compact(self, rows: slice, cols, width, cap):
        """Distances of the drawn columns and which of them each query uses (first ``cap`` admissible)."""
        dc = self.dist[rows][:, cols]
        adm = self.admissible(rows, cols)
        if cap is None or self.exclude is None:
            return dc, adm
        cs = np.cumsum(adm, axis=1)
        ends = np.cumsum(width) - 1  # last column of each identity
        before = np.concatenate([np.zeros((len(cs), 1), np.int64), cs[:, ends[:-1]]], axis=1)
        return dc, adm & (cs - np.repeat(before, width, axis=1) <= cap)


def _first_hit_rank(d, avail, codes, target, order=None) -> np.ndarray:
    """1-based rank of the best admissible correct entry among admissible entries (0 = none).

    ``order`` None: ties pessimistic (tied wrong entries count as ahead). Otherwise
    integer keys broadcastable to ``d``: among tied entries the smaller key ranks first.
    """
    match = codes == target[:, None]
    ok = match & avail
    dtrue = np.where(ok, d, np.inf).min(axis=1)[:, None]
    if order is None:
        ahead = avail & ~match & (d <= dtrue)
    else:
        order = np.broadcast_to(order, np.broadcast_shapes(np.shape(d), np.shape(order)))
        first = np.where(ok & (d == dtrue), order, np.iinfo(np.int64).max).min(axis=1)[:, None]
        ahead = avail & ~match & ((d < dtrue) | ((d == dtrue) & (order < first)))
    return np.where(np.isfinite(dtrue[:, 0]), 1 + ahead.sum(axis=1), 0)


def _sorted_hits(d, sel, match, order=None) -> np.ndarray:
    """Correct-match flags in rank order; unused entries go last.

    Ties put wrong entries first (``order`` None), or follow the integer keys ``order``
    (broadcastable to ``d``; smaller first).
    """
    key = np.where(sel, d, np.inf)
    second = match if order is None else np.broadcast_to(order, key.shape)
    ranked = np.lexsort((second, key), axis=1)
    return np.take_along_axis(sel & match, ranked, axis=1)


def _hit_list(matches) -> np.ndarray:
    hits = np.asarray(matches, dtype=bool)
    if hits.ndim != 1 or not hits.any():
        raise ValueError(f"scores_sorted_matches: expected a 1-D boolean array with at least one True, "
                         f"got shape {hits.shape} with {int(hits.sum())} True")
    return hits


def _matrix(name: str, a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or not np.isfinite(a).all():
        raise ValueError(f"{name}: expected a finite N x D array, got shape {a.shape}")
    return a


def _positive(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    return int(v)
