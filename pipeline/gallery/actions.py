"""Operator actions on the gallery: rename, merge, forget and split identities (see docs/identity.md).

Plain functions of a :class:`~reidstream.pipeline.gallery.store.Gallery`; its methods of the same names
delegate to them. Every change is marked for the journal like the gallery's own decisions
(:mod:`~reidstream.pipeline.gallery.mutations`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from reidstream.pipeline.gallery.store import Gallery


def rename(g: Gallery, identity: str, name: str, *, pin: bool = True) -> str:
    """Gives ``identity`` a new name (a person named by an operator); its visits and live tracks keep it.

    Args:
        g: The gallery.
        identity: The identity to rename.
        name: The new name: 1-64 printable characters, not held by another identity.
        pin: Also pin it (named people never expire, like enrolled ones).

    Raises:
        KeyError: no such identity.
        ValueError: ``name`` is empty, too long, not printable or taken.
    """
    slot = g._lookup(identity)
    if not isinstance(name, str) or not name.strip() or len(name) > 64 or not name.isprintable() \
            or name != name.strip():
        raise ValueError(f"rename '{identity}': expected a name of 1-64 printable characters without leading "
                         f"or trailing spaces, got {name!r}")
    if name != identity and name in g._slot:
        raise ValueError(f"rename '{identity}': identity name '{name}' is already in the gallery")
    del g._slot[identity]
    g._slot[name], g._names[slot] = slot, name
    g.pinned[slot] = g.pinned[slot] or pin
    g._dirty_slots.add(slot)
    return name


def merge(g: Gallery, keep: str, gone: str) -> str:
    """Moves every visit and live track of ``gone`` to ``keep`` and removes ``gone`` (one person, two ids).

    Raises:
        KeyError: either identity is unknown.
        ValueError: ``keep`` and ``gone`` are the same identity.
    """
    a, b = g._lookup(keep), g._lookup(gone)
    if a == b:
        raise ValueError(f"merge: expected two different identities, got '{keep}' twice")
    for row in g.visits.rows_of(b).tolist():
        g.visits.owner[row] = a
        g._dirty_rows.add(int(row))
    for st in g._tracks.values():
        if st.slot == b:
            st.slot, st.better, st.contrary = a, 0, 0
    g.last_seen[a] = max(g.last_seen[a], g.last_seen[b])
    g.pinned[a] = g.pinned[a] or g.pinned[b]
    if b in g._slot_camera and g.last_seen[b] >= g.last_seen[a]:
        g._slot_camera[a] = g._slot_camera[b]
    g._dirty_slots.add(a)
    g._remove(b)
    g._bound_visits(a)
    return keep


def forget(g: Gallery, identity: str) -> str:
    """Erases ``identity``: its visits (every stored vector) and the evidence of its live tracks (a person
    still in view starts afresh as a new track). For the erasure to reach the disk, save the gallery and
    empty the journal after draining this change (earlier journal batches hold its vectors).

    Raises:
        KeyError: no such identity.
    """
    slot = g._lookup(identity)
    for tid in [t for t, st in g._tracks.items() if st.slot == slot]:
        del g._tracks[tid]
    g._touched_rows = {r: t for r, t in g._touched_rows.items() if int(g.visits.owner[r]) != slot}
    g._touched_slots.pop(slot, None)
    return g._remove(slot)


def split(g: Gallery, identity: str, rows: Sequence[int]) -> str:
    """Moves visits of ``identity`` to a new identity (an operator undoing a wrong merge); a live track
    holding one of them follows it. Journalled like the other changes.

    Args:
        g: The gallery.
        identity: The identity to split.
        rows: Visit rows of ``identity`` (as listed by :func:`visit_rows`) that become the new identity.

    Returns:
        The new identity's name.

    Raises:
        KeyError: no such identity.
        ValueError: ``rows`` is empty, holds a non-integer or a row that is not a visit of ``identity``,
            or all of its visits (rename it instead).
    """
    slot = g._lookup(identity)
    own = set(g.visits.rows_of(slot).tolist())
    if isinstance(rows, (str, bytes)) or not all(isinstance(r, (int, np.integer)) and not isinstance(r, bool)
                                                 for r in rows):
        raise ValueError(f"split '{identity}': expected a list of visit rows (integers), got {rows!r}")
    wanted = sorted({int(r) for r in rows})
    if not wanted:
        raise ValueError(f"split '{identity}': expected at least one visit row, got none")
    foreign = [r for r in wanted if r not in own]
    if foreign:
        raise ValueError(f"split '{identity}': visit row(s) {foreign} are not visits of '{identity}' "
                         f"(its rows: {sorted(own)})")
    if len(wanted) == len(own):
        raise ValueError(f"split '{identity}': rows {wanted} are all of its visits; keep at least one "
                         f"(to give the whole identity another name, rename it)")
    v = g.visits
    new = g._new_identity(None, float(v.end[wanted].max()))
    for row in wanted:
        v.owner[row] = new
        g._dirty_rows.add(row)
    for st in g._tracks.values():
        if st.slot == slot and st.row in wanted:
            st.slot, st.better, st.contrary, st.new = new, 0, 0, False
            if st.camera is not None:
                g._slot_camera[new] = st.camera
    g.last_seen[slot] = float(v.end[v.rows_of(slot)].max())
    g._dirty_slots.add(slot)
    return g._names[new]


def visit_rows(g: Gallery, identity: str) -> list[int]:
    """The visit rows of ``identity``, oldest first (for :func:`split`)."""
    rows = g.visits.rows_of(g._lookup(identity))
    return [int(r) for r in rows[np.argsort(g.visits.start[rows], kind="stable")]]


__all__ = ["forget", "merge", "rename", "split", "visit_rows"]
