"""The gallery's decisions (rules 3-6 of :mod:`~reidstream.pipeline.gallery.store`): which pending tracks are
due, the open-set assignment of deciding tracks to identities on fused evidence, re-checks of decided tracks, and
the last check of a track that founded its identity. Plain functions of the gallery, which delegates to them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from reidstream.pipeline.gallery import drift
from reidstream.pipeline.gallery import explain as explaining
from scipy.optimize import linear_sum_assignment

if TYPE_CHECKING:
    from reidstream.pipeline.gallery.store import Gallery, _Track


def assign_open_set(score: np.ndarray, threshold: float | np.ndarray) -> dict[int, int]:
    """Optimal one-to-one assignment of tracks (rows) to identities (columns) that maximises the summed evidence.

    Each track may instead start a new identity, worth ``threshold`` (one dummy column per track), so a
    track joins an identity only when its fused LLR exceeds ``threshold`` and no better joint assignment
    exists; a greedy best-first pass would let the first track take an identity a later one fits better.

    Args:
        score: ``T x M`` fused LLRs (``-inf``: excluded, e.g. the identity was seen at the same time).
        threshold: The open-set threshold, or one per track (``T``).

    Returns:
        Track row -> identity column, for the tracks that join an existing identity.
    """
    t, m = score.shape
    if t == 0 or m == 0:
        return {}
    th = np.broadcast_to(np.asarray(threshold, np.float64), (t,))
    low = -1e6 - float(np.abs(th).max()) * (t + 1)
    real = np.where(np.isfinite(score) & (score > th[:, None]), score, low)
    dummy = np.full((t, t), low)
    np.fill_diagonal(dummy, th)
    rows, cols = linear_sum_assignment(-np.concatenate([real, dummy], axis=1))
    return {int(r): int(c) for r, c in zip(rows, cols) if c < m and real[r, c] > low}


def ready_to_decide(g: Gallery, pending: list[_Track], timestamp: float) -> list[_Track]:
    """The pending tracks to decide now (rule 3): decisive for an identity, old enough and clearly new, or
    pending for ``max_pending_s``."""
    c = g.config
    enough = [st for st in pending if st.evidence.frames >= c.min_frames]
    ready = [st for st in enough if timestamp - st.evidence.first_seen >= max(c.max_pending_s, c.pending_s)]
    rest = [st for st in enough if st not in ready]
    if rest and not len(g.visits):
        return ready + [st for st in rest if timestamp - st.evidence.first_seen >= c.pending_s]
    if rest:
        score, _, _ = g._scores(rest)
        margin = score - g.pair_thresholds([st.evidence.lit for st in rest])
        for t, st in enumerate(rest):
            best = float(np.max(margin[t])) if margin.shape[1] else -np.inf  # above its pair's threshold
            aged = timestamp - st.evidence.first_seen >= c.pending_s
            if best > c.decisive_margin or (aged and not -c.undecided_margin < best <= 0.0):
                ready.append(st)
    return ready


def sparse(g: Gallery, st: _Track) -> bool:
    """Whether ``st`` was detected in fewer than ``min_coverage`` of the frames since it started (its
    camera's frame interval; unknown: not sparse)."""
    steps = g._frame_dt.get(st.camera, (None, ()))[1]
    dt = float(np.median(steps)) if len(steps) else 0.0
    span = st.evidence.last_seen - st.evidence.first_seen
    return dt > 0 and st.evidence.frames < g.config.min_coverage * (span / dt + 1.0)


def decide(g: Gallery, states: list[_Track], timestamp: float, ended: bool = False, join_only: bool = False) -> None:
    """Decides ``states`` (rule 4); ``ended``: the tracks have left the view, and one seen for less than
    ``min_new_s`` only joins an identity, never founds one (left undecided: its frames keep no identity);
    ``join_only``: no track founds an identity (a track's tail cut off when it ended, :func:`.drift.tail`).

    The one-to-one assignment holds among tracks seen at the same time only: tracks deciding together that
    never overlapped in time (one ended before the other began: a track the tracker lost and started
    again, both decided when the stream ends) are decided one group after the other, in the order they
    began, so that the later one may join the identity the earlier one took."""
    for group in overlapping_groups(states):
        _decide_group(g, group, timestamp, ended, join_only)


def _decide_group(g: Gallery, states: list[_Track], timestamp: float, ended: bool, join_only: bool) -> None:
    """Decides ``states``, tracks that overlap in time, together (see :func:`decide`)."""
    score, fused, summaries, parts = g._scores(states, explain=True)
    margin = score - g.pair_thresholds([st.evidence.lit for st in states])
    pairs = assign_open_set(margin, 0.0)
    for t, st in enumerate(states):
        slot = pairs.get(t)
        if slot is None and (join_only or sparse(g, st) or ended and
                             st.evidence.last_seen - st.evidence.first_seen < g.config.min_new_s):
            continue
        st.new = slot is None
        why = explaining.explain_row(g, t, st, score, fused, parts, slot, "new" if slot is None else "joined",
                                     timestamp)
        if slot is None:
            slot = g._new_identity(None, timestamp)
            st.evidence_llr = float(score[t].max()) if score.shape[1] and np.isfinite(score[t].max()) else 0.0
        else:
            st.evidence_llr = float(score[t, slot])
        st.slot, st.last_check = slot, timestamp
        drift.start(st, timestamp, enabled=g.config.cut_after > 0)
        if st.camera is not None:
            g._slot_camera[slot] = st.camera
        st.row = g.visits.add(slot, -1, summaries[t], st.evidence.first_seen, st.evidence.last_seen)
        g._dirty_rows.add(st.row)
        g._bound_visits(slot)
        if not st.new:
            drift.handed_over(g, st)
        explaining.keep_explanation(g, st, *why)


def overlapping_groups(states: list[_Track]) -> list[list[_Track]]:
    """``states`` grouped by overlap in time (connected: a group holds every track that overlaps one in it),
    the groups in the order they began."""
    groups: list[list[_Track]] = []
    end = -np.inf
    for st in sorted(states, key=lambda st: st.evidence.first_seen):
        if groups and st.evidence.first_seen <= end:
            groups[-1].append(st)
            end = max(end, st.evidence.last_seen)
        else:
            groups.append([st])
            end = st.evidence.last_seen
    return groups


def recheck(g: Gallery, states: list[_Track], timestamp: float) -> None:
    """Re-checks decided tracks against the other identities (rule 5 of :mod:`.store`)."""
    score, fused, _, parts = g._scores(states, explain=True)
    th = g.pair_thresholds([st.evidence.lit for st in states])
    m = g.config.switch_margin
    for t, st in enumerate(states):
        st.last_check = timestamp
        own = score[t, st.slot]
        others = score[t].copy()
        others[st.slot] = -np.inf
        best = int(np.argmax(others)) if len(others) else -1
        better = best >= 0 and others[best] > th[t, best] and \
            (not np.isfinite(own) or others[best] > own + m)
        st.better = st.better + 1 if better else 0
        st.contrary = st.contrary + 1 if np.isfinite(own) and own < -m else 0
        if st.better >= g.config.switch_after and st.slot != best and g._names[best] is not None:
            why = explaining.explain_row(g, t, st, score, fused, parts, best, "moved", timestamp)
            g._move(st, best, timestamp)
            st.evidence_llr, st.new = float(others[best]), False
            drift.handed_over(g, st)
        elif st.contrary >= g.config.switch_after:
            why = explaining.explain_row(g, t, st, score, fused, parts, None, "split", timestamp)
            g._move(st, g._new_identity(None, timestamp), timestamp)
            st.evidence_llr, st.new = float(own), True
        else:
            why = explaining.explain_row(g, t, st, score, fused, parts, st.slot, "kept", timestamp)
        explaining.keep_explanation(g, st, *why)


def last_check(g: Gallery, st: _Track, timestamp: float, summary=None) -> None:
    """A track that founded its identity has ended: with all its evidence (``summary``: the part of it that
    stays in its visit, when a tail was cut off), it joins another identity that now scores
    ``switch_margin`` above the threshold (its own, left empty, is merged away). A track decided on a poor
    first second (a return in the dark) is thus not left as a second identity."""
    if st.slot is None or len(g.visits.rows_of(st.slot)) != 1:
        return
    score, fused, _, parts = g._scores([st], explain=True,
                                          summaries=None if summary is None else [summary])
    others = score[0].copy()
    others[st.slot] = -np.inf
    if not len(others):
        return
    best = int(np.argmax(others))
    th = g.pair_thresholds([st.evidence.lit])[0, best]
    if others[best] > th + g.config.switch_margin and g._names[best] is not None:
        why = explaining.explain_row(g, 0, st, score, fused, parts, best, "moved", timestamp)
        g._move(st, best, timestamp)
        st.evidence_llr, st.new = float(others[best]), False
        explaining.keep_explanation(g, st, *why)


__all__ = ["assign_open_set", "decide", "last_check", "overlapping_groups", "ready_to_decide", "recheck", "sparse"]
