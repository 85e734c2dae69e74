"""Why the gallery decided as it did: the evidence behind its decisions and re-checks (see docs/identity.md).

Each decision or re-check of :class:`~reidstream.pipeline.gallery.store.Gallery` keeps an
:class:`~reidstream.pipeline.gallery.fusion.Explanation`: the track's per-cue evidence for the identity chosen
against the best other one, kept per live track and per identity (bounded) and read back with current names.
Plain functions of the gallery; its methods ``explanation`` and ``explanations`` delegate to them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from reidstream.pipeline.gallery.evidence import VisitTable
from reidstream.pipeline.gallery.fusion import Explanation, cue_terms, fused_llr

if TYPE_CHECKING:
    from reidstream.pipeline.gallery.store import Gallery, _Track


def explain_row(g: Gallery, t: int, st: _Track, score: np.ndarray, fused: np.ndarray, parts: tuple,
                chosen: int | None, outcome: str, timestamp: float) -> tuple[Explanation, tuple[int, int] | None]:
    """The evidence of row ``t`` of a :meth:`Gallery._scores` call with ``explain`` for identity slot ``chosen``
    (None: a new identity) against the best other identity, before the decision changes the gallery
    (its ``identity`` is filled in by :func:`keep_explanation`); and the runner-up's ``(slot, created)``.

    The per-cue terms come from ``fused_llr(..., explain=True)`` of the track's summary against the two
    visits that gave the identities their scores (copied into a small table), so that the decision's
    scoring of the whole gallery keeps no per-cue matrices."""
    summaries, prior = parts
    others = score[t].copy()
    if chosen is not None:
        others[chosen] = -np.inf
    ru = int(np.argmax(others)) if len(others) and np.isfinite(others.max()) else None

    def best_row(slot: int | None) -> int | None:  # the visit that gave the identity its score
        rows = g.visits.rows_of(slot) if slot is not None else np.zeros(0, np.int64)
        best = fused[t, rows]
        return int(rows[np.argmax(best)]) if len(rows) and np.isfinite(best.max()) else None

    pair = (chosen, ru)
    rows, mini = [best_row(s) for s in pair], VisitTable()
    at = [None if r is None else mini.add(0, -1, g.visits.visit(r), 0.0, 0.0) for r in rows]
    terms = fused_llr([summaries[t]], mini, g.calibration, explain=True)[1] if len(mini) else {}
    extra = None
    if prior is not None and any(s is not None and prior[t, s] for s in pair):
        extra = {"topology": [None if s is None else float(prior[t, s]) for s in pair]}
    total = [float(score[t, s]) if s is not None and np.isfinite(score[t, s]) else None for s in pair]
    lit = st.evidence.lit
    shown = next((s for s in pair if s is not None), None)  # the threshold of the pair the decision weighed
    threshold = g.threshold_for(lit) if shown is None else float(g.pair_thresholds([lit])[0, shown])
    ex = Explanation(-1, float(timestamp), outcome, "", None if ru is None else g._names[ru], lit,
                     threshold, total[0], total[1],
                     cue_terms(terms, 0, at, extra), st.camera)
    return ex, None if ru is None else (ru, int(g.created[ru]))


def keep_explanation(g: Gallery, st: _Track, ex: Explanation, runner_up: tuple[int, int] | None) -> None:
    """Keeps ``ex`` as the latest decision of the track and of the identity it now holds (bounded: live
    tracks and identities only)."""
    tid = next((k for k, v in g._tracks.items() if v is st), -1)
    ex = replace(ex, track=int(tid), identity=g._names[st.slot])
    rec = (ex, st.slot, int(g.created[st.slot]), runner_up)
    g._explained_tracks[int(tid)] = rec
    g._explained_slots[st.slot] = rec
    g.explain_serial += 1
    if len(g._explained_tracks) > 2 * len(g._tracks) + 16:
        g._explained_tracks = {k: r for k, r in g._explained_tracks.items() if k in g._tracks}
    if len(g._explained_slots) > 2 * len(g._slot) + 16:
        g._explained_slots = {k: r for k, r in g._explained_slots.items() if alive(g, k, r[2])}


def alive(g: Gallery, slot: int, created: int) -> bool:
    """Whether identity slot ``slot`` still holds the identity created as number ``created``."""
    return slot < len(g._names) and g._names[slot] is not None and int(g.created[slot]) == created


def explained(g: Gallery, rec: tuple) -> Explanation:
    """The explanation a kept record holds, with the current names of its identity and runner-up."""
    ex, slot, created, ru = rec
    names = {}
    if alive(g, slot, created):
        names["identity"] = g._names[slot]
    if ru is not None and alive(g, *ru):
        names["runner_up"] = g._names[ru[0]]
    return replace(ex, **names)


def explanation(g: Gallery, key: int | str) -> Explanation | None:
    """The evidence behind the latest decision or re-check of a live track (``key``: its id) or of the
    latest one that gave an identity a track (``key``: its name), with current identity names.

    Returns:
        None when there is none (a pending or ended track, an identity no decision chose since it was
        created or loaded).

    Raises:
        KeyError: ``key`` is a name the gallery does not hold.
    """
    if isinstance(key, str):
        slot = g._lookup(key)
        rec = g._explained_slots.get(slot)
        rec = rec if rec is not None and alive(g, slot, rec[2]) else None
    else:
        rec = g._explained_tracks.get(int(key)) if int(key) in g._tracks else None
    return None if rec is None else explained(g, rec)


def explanations(g: Gallery) -> tuple[dict[str, Explanation], dict[int, Explanation]]:
    """Every kept explanation (:func:`explanation`): ``(by identity name, by live track id)``."""
    by_identity = {g._names[slot]: explained(g, rec) for slot, rec in g._explained_slots.items()
                   if alive(g, slot, rec[2])}
    by_track = {tid: explained(g, rec) for tid, rec in g._explained_tracks.items() if tid in g._tracks}
    return by_identity, by_track


__all__ = ["alive", "explain_row", "explained", "explanation", "explanations", "keep_explanation"]
