"""Fused evidence of tracks against stored visits: per cue distances, calibrated LLRs, summed.

Cue names (see :mod:`~reidstream.pipeline.gallery.calibration`):

* ``A~B`` for two embedding features of one space, sorted (``rgbd/depth~rgbd/depth``,
  ``rgbir/ir~rgbir/rgb``): cosine distance ``1 - cos`` of the prototypes, in either direction;
* ``colour~colour``: Hellinger distance ``sqrt(1 - BC)`` of the colour statistics;
* ``height``, ``width``: difference of the body measures, with the summed variance of both.

:func:`fused_llr` is Eq. "fused = sum_c w_c LLR_c" of the calibration module, over the cues that both
the track and the visit have; a visit sharing no calibrated cue with the track scores 0 (no evidence).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from reidstream.pipeline.gallery.calibration import LIGHTS, Calibration
from reidstream.pipeline.gallery.evidence import Visit, VisitTable

MEASURES = ("height", "width")


def cue_name(a: str, b: str) -> str:
    """The (unordered) cue of query feature ``a`` against gallery feature ``b``."""
    return "~".join(sorted((a, b)))


def feature_pairs(features: Sequence[str]) -> list[tuple[str, str]]:
    """Every (query, gallery) pair of features that can be compared: same feature, or two modalities of one space."""
    out = []
    for a in features:
        for b in features:
            if a == b or ("/" in a and "/" in b and a.split("/")[0] == b.split("/")[0]):
                out.append((a, b))
    return out


def _stack(queries: Sequence[Visit], key: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    q = np.zeros((len(queries), dim), np.float32)
    has = np.zeros(len(queries), bool)
    for i, v in enumerate(queries):
        x = v.vectors.get(key)
        if x is not None and len(x) == dim:
            q[i], has[i] = x, True
    return q, has


def cue_distances(queries: Sequence[Visit], table: VisitTable, pairs: Sequence[tuple[str, str]] | None = None
                  ) -> Iterator[tuple[str, np.ndarray, np.ndarray | float, np.ndarray]]:
    """For each cue, ``(cue name, distance Q x R, variance (Q x R or 0), valid Q x R)`` over the table's rows.

    One matrix product per gallery feature (all query features that compare with it stacked), so the
    stored prototypes are read once per call.

    Args:
        queries: Track summaries.
        table: The stored visits (all ``capacity`` rows; unused rows are never valid).
        pairs: (query feature, gallery feature) pairs of vector features; None: every comparable pair.
    """
    if pairs is None:
        feats = sorted({k for q in queries for k in q.vectors} & set(table.vectors))
        pairs = feature_pairs(feats)
    by_gallery: dict[str, list[str]] = {}
    for qkey, gkey in pairs:
        if gkey in table.vectors:
            by_gallery.setdefault(gkey, []).append(qkey)
    n = len(queries)
    for gkey, qkeys in by_gallery.items():
        g = table.vectors[gkey]
        stacked = [_stack(queries, qkey, g.shape[1]) for qkey in qkeys]
        keep = [k for k, (_, has) in enumerate(stacked) if has.any()]
        if not keep:
            continue
        sims = np.concatenate([stacked[k][0] for k in keep]) @ g.T
        g_ok = table.has[gkey] & table.used
        for j, k in enumerate(keep):
            qkey, (_, has) = qkeys[k], stacked[k]
            sim = sims[j * n:(j + 1) * n]
            d = np.sqrt(np.clip(1.0 - sim, 0.0, None)) if qkey == "colour" else 1.0 - sim
            yield cue_name(qkey, gkey), d, 0.0, has[:, None] & g_ok[None, :]
    for name in MEASURES:
        qx = np.array([getattr(v, name) for v in queries], np.float64)
        qs = np.array([getattr(v, name + "_sigma") for v in queries], np.float64)
        gx, gs = getattr(table, name), getattr(table, name + "_sigma")
        valid = (np.isfinite(qx) & np.isfinite(qs))[:, None] & (np.isfinite(gx) & np.isfinite(gs) & table.used)[None, :]
        if not valid.any():
            continue
        with np.errstate(invalid="ignore"):
            d = qx[:, None] - gx[None, :]
            var = qs[:, None] ** 2 + gs[None, :] ** 2
        yield name, np.where(valid, d, 0.0), np.where(valid, var, 0.0), valid


def light_classes(queries: Sequence[Visit], table: VisitTable) -> dict[str, np.ndarray]:
    """``Q x R`` masks of the three light conditions of every (track, visit) pair."""
    ql = np.array([v.lit for v in queries], bool)[:, None]
    gl = table.lit[None, :]
    return {"lit-lit": ql & gl, "dark-dark": ~ql & ~gl, "lit-dark": ql ^ gl}


def fused_llr(queries: Sequence[Visit], table: VisitTable, calibration: Calibration, *, explain: bool = False):
    """Fused LLR of every track against every stored visit: ``Q x R``, ``-inf`` for rows not in use.

    Args:
        queries: Track summaries.
        table: The stored visits.
        calibration: Cue models and weights.
        explain: Also return the terms whose sum is ``fused``: ``cue -> [(weighted LLR Q x R, valid Q x R), ...]``
            (one part per direction of a cross-modal cue), references to the arrays computed anyway, so the
            decision costs no more; read them with :func:`cue_terms` or :func:`term_matrix`.

    Returns:
        ``fused``, or ``(fused, terms)`` with ``explain``.
    """
    fused = np.zeros((len(queries), table.capacity), np.float32)
    terms: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    if not queries or not table.capacity:
        return (fused, terms) if explain else fused
    names = calibration.cue_names()
    pairs = [(a, b) for a, b in feature_pairs(sorted({k for q in queries for k in q.vectors} | set(table.vectors)))
             if cue_name(a, b) in names]
    lights = None
    for cue, d, var, valid in cue_distances(queries, table, pairs):
        models = {light: calibration.model(cue, light) for light in LIGHTS}
        distinct = {id(m): m for m in models.values() if m is not None}
        if not distinct:
            continue
        if len(distinct) == 1 and all(m is not None for m in models.values()):
            m = next(iter(distinct.values()))
            llr = m.weight * m.llr(d, var)
        else:
            lights = light_classes(queries, table) if lights is None else lights
            llr = np.zeros(d.shape)
            for light, m in models.items():
                if m is not None:
                    llr = np.where(lights[light], m.weight * m.llr(d, var), llr)
            valid = valid & np.any([lights[light] for light, m in models.items() if m is not None], axis=0)
        fused += np.where(valid, llr, 0.0).astype(np.float32)
        if explain:
            terms.setdefault(cue, []).append((llr, valid))
    fused[:, ~table.used] = -np.inf
    return (fused, terms) if explain else fused


def per_identity(fused: np.ndarray, owners: np.ndarray, used: np.ndarray, slots: int) -> np.ndarray:
    """Best visit of each identity slot: ``score Q x slots`` (``-inf`` for slots without visits)."""
    score = np.full((fused.shape[0], slots), -np.inf)
    rows = np.flatnonzero(used)
    if not len(rows) or not fused.shape[0]:
        return score
    o = owners[rows]
    order = np.argsort(o, kind="stable")
    rows, o = rows[order], o[order]
    starts = np.flatnonzero(np.r_[True, o[1:] != o[:-1]])
    block = np.ascontiguousarray(fused[:, rows].T)  # rows x Q: reduceat runs over contiguous memory
    score[:, o[starts]] = np.maximum.reduceat(block, starts, axis=0).T
    return score


@dataclass(frozen=True)
class CueTerm:
    """One cue's weighted LLR in a decision, against the chosen identity's best visit and the runner-up's.

    Attributes:
        cue: The cue (``rgbd/depth~rgbd/depth``, ``colour~colour``, ``height``, ``width``, or ``topology``:
            the site's transit prior).
        chosen: Its term for the chosen identity (None: that pair lacks the cue, or the track started a new one).
        runner_up: Its term for the runner-up identity (None: lacking, or no runner-up).
    """

    cue: str
    chosen: float | None
    runner_up: float | None


@dataclass(frozen=True)
class Explanation:
    """The evidence behind the latest decision or re-check of a track
    (:meth:`~reidstream.pipeline.gallery.store.Gallery.explanation`).

    Attributes:
        track: The track's id.
        time: When it was decided (stream time, s).
        outcome: ``joined`` (an existing identity) or ``new`` for a first decision; ``kept``, ``moved`` or
            ``split`` (into a new identity) for a re-check.
        identity: The identity the track got (its current name).
        runner_up: The best-scoring other identity (None: no other identity could be compared).
        lit: Whether the track was mostly lit (which threshold applied).
        threshold: The open-set threshold used.
        chosen_total: The chosen identity's score, the sum of the ``chosen`` terms (None: a new identity, or
            no other visit of the kept identity to compare with).
        runner_up_total: The runner-up's score.
        cues: One :class:`CueTerm` per cue present in either pair.
        camera: The track's camera (None: unknown).
    """

    track: int
    time: float
    outcome: str
    identity: str
    runner_up: str | None
    lit: bool
    threshold: float
    chosen_total: float | None
    runner_up_total: float | None
    cues: tuple[CueTerm, ...]
    camera: str | None = None

    def to_dict(self) -> dict:
        """A JSON-able dict (cues as a list of ``{"cue", "chosen", "runner_up"}``)."""
        return {"track": self.track, "time": self.time, "outcome": self.outcome, "identity": self.identity,
                "runner_up": self.runner_up, "lit": self.lit, "threshold": self.threshold,
                "chosen_total": self.chosen_total, "runner_up_total": self.runner_up_total, "camera": self.camera,
                "cues": [{"cue": c.cue, "chosen": c.chosen, "runner_up": c.runner_up} for c in self.cues]}


def _term(parts: list[tuple[np.ndarray, np.ndarray]], t: int, row: int | None) -> float | None:
    got = [float(llr[t, row]) for llr, valid in parts if row is not None and valid[t, row]]
    return float(np.float32(sum(got))) if got else None


def term_matrix(parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """One cue's terms from ``fused_llr(..., explain=True)`` as a ``Q x R`` float32 matrix (NaN: pair lacks it)."""
    out = np.full(parts[0][0].shape, np.nan, np.float32)
    for llr, valid in parts:
        out = np.where(valid, np.where(np.isnan(out), 0.0, out) + llr, out).astype(np.float32)
    return out


def cue_terms(terms: dict[str, list[tuple[np.ndarray, np.ndarray]]], t: int, rows: Sequence[int | None],
              extra: dict[str, Sequence[float | None]] | None = None) -> tuple[CueTerm, ...]:
    """The per-cue terms of query ``t`` against two visit rows (chosen, runner-up) from ``fused_llr(...,
    explain=True)``; ``extra``: further terms per cue (the topology prior) for the two. Cues absent from
    both pairs are left out."""
    out = []
    for cue in sorted(terms):
        pair = [_term(terms[cue], t, r) for r in rows]
        if any(x is not None for x in pair):
            out.append(CueTerm(cue, pair[0], pair[1]))
    for cue, pair in (extra or {}).items():
        out.append(CueTerm(cue, *(None if x is None else float(x) for x in pair)))
    return tuple(out)


__all__ = ["MEASURES", "CueTerm", "Explanation", "cue_distances", "cue_name", "cue_terms", "feature_pairs",
           "fused_llr", "light_classes", "per_identity", "term_matrix"]
