"""A track that changes person: the last second of a decided track against everything it had before.

A tracker can carry a track from one person onto another (one leaves the view where another enters, two
cross behind each other in the dark, where the tracker has no appearance to go on). The whole-track
evidence the gallery re-checks (rule 5 of :mod:`~reidstream.pipeline.gallery.store`) follows the new person
only slowly: the earlier frames outweigh the later ones for as long as the first person was seen. So a
decided track also keeps a *window*, its evidence since the last re-check (``recheck_s``), and an *anchor*,
the summary of the track up to that window. At each re-check the window is scored against the anchor with
the same calibrated, fused evidence as every decision (:func:`~reidstream.pipeline.gallery.fusion.fused_llr`):

* ``fused < -cut_margin``: the window contradicts its own track. The anchor is left as it was (the contrary
  frames do not become the track's past) and the window's evidence is kept as the start of a possible new
  person.
* ``-cut_margin <= fused < cut_doubt``: the window is *doubtful*. It is not folded into the anchor either, and
  its evidence is kept as the start of a possible new person, as for a contrary one, but it does not count
  towards a cut. From then on each re-check scores all the evidence since the doubt began (not only the last
  window) against the anchor: a weak contrary signal that persists adds up to a cut, which then starts where
  the doubt began; a part that scores ``cut_doubt`` or more is folded in. Without this (``cut_doubt`` None)
  a first, mildly contrary window of a similar-looking person became part of the anchor, and the windows
  after it no longer contradicted a track that was by then half theirs.
* ``cut_after`` contrary windows in a row: the track is **cut**. Its visit is put back to the anchor (the
  person before the change) and ends there; from the first contrary window on the track is a new, pending
  track with only that evidence, decided like any new track (it may join an identity, a new one, or even
  its old identity if its other visits say so).
* Otherwise the window becomes part of the anchor.

A track often jumps to someone nearby in its last moments (its person walks out of view or behind someone,
and the tracker hands the box to the person next to them for a few frames before giving up). When a decided
track ends, its last, unfinished window (with the contrary one before it, if any) is therefore scored
against the anchor too (:func:`tail`): if it contradicts it, that tail is cut off like a cut above and
may join an identity, but never founds one (a few frames of someone half hidden or leaving: when they match
nobody, they keep no identity).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from reidstream.pipeline.gallery.evidence import TrackEvidence, VisitTable
from reidstream.pipeline.gallery.fusion import fused_llr

if TYPE_CHECKING:
    from reidstream.pipeline.gallery.store import Gallery, _Track


def stores(st: "_Track") -> list[TrackEvidence]:
    """The accumulators a frame of ``st`` goes into: the track, and for a decided track its window (and the
    evidence since the first contrary window)."""
    out = [st.evidence]
    if st.window is not None:
        out.append(st.window)
    if st.since_contrary is not None and st.since_contrary is not st.window:
        out.append(st.since_contrary)
    return out


def start(st: "_Track", timestamp: float, enabled: bool = True) -> None:
    """A track is decided: its anchor is its evidence so far, its first window starts now (nothing to keep when
    cuts are off, ``enabled`` False)."""
    if not enabled:
        return
    st.anchor, st.anchor_end = st.evidence.summary(), float(timestamp)
    st.window, st.since_contrary, st.contrary_windows = TrackEvidence(timestamp), None, 0


def check(gallery: "Gallery", states: list["_Track"], timestamp: float) -> list["_Track"]:
    """Scores each decided track's window against its anchor (see the module docstring); returns the tracks
    to cut now."""
    c = gallery.config
    ready = [st for st in states if st.window is not None and st.anchor is not None and st.window.frames > 0]
    if not ready:
        return []
    cut = []
    doubt = c.cut_doubt
    parts = [st.since_contrary if doubt is not None and st.since_contrary is not None else st.window
             for st in ready]
    for st, llr in zip(ready, _llrs(gallery, ready, parts)):
        if np.isfinite(llr) and llr < -c.cut_margin:
            if st.since_contrary is None:
                st.since_contrary = st.window  # keeps accumulating: the possible new person's evidence
            st.contrary_windows += 1
            if st.contrary_windows >= c.cut_after:
                cut.append(st)
        elif doubt is not None and np.isfinite(llr) and llr < doubt:
            if st.since_contrary is None:
                st.since_contrary = st.window  # doubtful: kept out of the anchor, tested as one part from now on
            st.contrary_windows = 0
        else:
            st.since_contrary, st.contrary_windows = None, 0
            st.anchor, st.anchor_end = st.evidence.summary(), float(timestamp)
        st.window = TrackEvidence(timestamp)
    return cut


def _llrs(gallery: "Gallery", states: list["_Track"], parts: list[TrackEvidence]) -> np.ndarray:
    """The fused LLR of each ``parts[i]`` of decided track ``states[i]`` against that track's anchor."""
    table = VisitTable()
    rows = [table.add(0, -1, st.anchor, st.evidence.first_seen, st.anchor_end) for st in states]
    fused = fused_llr([p.summary() for p in parts], table, gallery.calibration)
    return fused[np.arange(len(rows)), rows]


def _contrary(gallery: "Gallery", states: list["_Track"], parts: list[TrackEvidence]) -> list[bool]:
    """Whether each ``parts[i]`` of decided track ``states[i]`` contradicts that track's anchor: its fused
    LLR against the anchor is below ``-cut_margin``."""
    llr = _llrs(gallery, states, parts)
    return list(np.isfinite(llr) & (llr < -gallery.config.cut_margin))


def tail(gallery: "Gallery", tid: int, st: "_Track", timestamp: float) -> bool:
    """A decided track ``tid`` has ended: cuts off its last part if that contradicts the rest of it (see the
    module docstring). The tail is decided as a track that left the view and reported as a cut
    (``gallery.last_cut``, ``last_cut_from``) with its identity in ``gallery.last_resolved`` (``""``: none).

    Returns:
        Whether the tail was cut off.
    """
    from reidstream.pipeline.gallery.store import _Track

    part = st.since_contrary if st.since_contrary is not None else st.window
    if part is None or st.anchor is None or part.frames < gallery.config.min_frames or \
            not _contrary(gallery, [st], [part])[0]:
        return False
    start_s = part.first_seen
    gallery.visits.set(st.row, st.anchor, st.evidence.first_seen, min(st.anchor_end, start_s))
    rest = _Track(part, last_check=start_s, modality=st.modality, camera=st.camera,
                  parent=(st.row, float(gallery.visits.start[st.row])))
    gallery._decide([rest], timestamp, ended=True, join_only=True)
    gallery.last_cut.append(tid)
    gallery.last_cut_from[tid] = start_s
    gallery.last_resolved[tid] = "" if rest.slot is None else gallery._names[rest.slot]
    gallery._ended(rest)
    return True


def cut(gallery: "Gallery", st: "_Track") -> None:
    """Cuts ``st`` (see the module docstring): its visit goes back to the anchor and ends where the first contrary
    window began; from there on the track is a new pending track (reported in ``gallery.last_cut``)."""
    tid = next(t for t, s in gallery._tracks.items() if s is st)
    _restart(gallery, tid, st, st.since_contrary)


def _restart(gallery: "Gallery", tid: int, st: "_Track", part: TrackEvidence) -> None:
    """Track ``tid`` (state ``st``) was someone else from ``part.first_seen`` on: its visit goes back to its anchor
    (as it is, without one) and ends there, and the track goes on as a new pending track holding ``part``,
    reported in ``gallery.last_cut`` and ``last_cut_from`` (the logs move its frames since then)."""
    from reidstream.pipeline.gallery.store import _Track

    start_s = part.first_seen
    gallery.last_cut.append(tid)
    gallery.last_cut_from[tid] = start_s
    if st.anchor is not None:
        gallery.visits.set(st.row, st.anchor, st.evidence.first_seen, min(st.anchor_end, start_s))
    else:
        gallery.visits.end[st.row] = min(float(gallery.visits.end[st.row]), start_s)
    gallery._ended(st)
    gallery._tracks[tid] = _Track(part, last_check=start_s, modality=st.modality, camera=st.camera,
                                  parent=(st.row, float(gallery.visits.start[st.row])))


def handed_over(gallery: "Gallery", st: "_Track") -> list[int]:
    """``st`` has just taken an identity whose visit by an older track it overlaps as a *handover* (rule 4 of
    :mod:`.store`: that track began before ``st``, is out of view, and was last seen less than ``handover_s``
    after ``st`` began). Two tracks seen at once are never one person, and ``st`` is that person: from the
    moment ``st`` began the old track was on someone else. Each such old track, if it has not ended yet, is cut
    there as :func:`cut` does: its visit ends where ``st`` began (its anchor's prototypes, when it has one:
    the track up to its last re-check), and the rest is a new pending track with no evidence, which keeps no
    identity unless the tracker finds it again. The logs move its frames since then off the identity
    (``gallery.last_cut``, ``last_cut_from``).

    Returns:
        The ids of the tracks cut.
    """
    v = gallery.visits
    if st.slot is None:
        return []
    _, handover = gallery._during(st)
    rows = set(np.flatnonzero(handover & (v.owner == st.slot)).tolist())
    out = []
    for tid, old in list(gallery._tracks.items()):
        if old is not st and old.row in rows and old.slot == st.slot:
            _restart(gallery, tid, old, TrackEvidence(st.evidence.first_seen))
            out.append(tid)
    return out


__all__ = ["check", "cut", "handed_over", "start", "stores", "tail"]
