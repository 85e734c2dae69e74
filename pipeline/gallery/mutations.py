"""The gallery's changes as journal records, and back (see :mod:`~reidstream.pipeline.gallery.journal`).

A :class:`~reidstream.pipeline.gallery.store.Gallery` marks the identity slots and visit rows it changes
(``_dirty_slots``, ``_dirty_rows``; the running refreshes of live tracks in ``_touched_slots``,
``_touched_rows``); :func:`drain_mutations` turns them into records, :func:`apply_mutation` sets the state one
record describes (a replayed journal, another worker's changes) and :func:`settle` marks a freshly loaded
gallery as unchanged. Plain functions of the gallery; its methods of the same names delegate to them.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

import numpy as np
from reidstream.pipeline.gallery.journal import Mutation, put_visit

if TYPE_CHECKING:
    from reidstream.pipeline.gallery.store import Gallery


def drain_mutations(g: Gallery, everything: bool = False) -> list[Mutation]:
    """The changes since the last call, as records (see :mod:`~reidstream.pipeline.gallery.journal`).

    ``counters`` and ``shift_clock`` come first, then per changed identity slot and visit row its new state
    or its removal. The running refreshes of live tracks are held back for ``journal_refresh_s``.

    Args:
        g: The gallery.
        everything: Also report the refreshes held back.
    """
    out = []
    counters = (int(g.next_id), int(g._serial))
    if counters != g._counters_sent:
        out.append(Mutation("counters", {"next_id": counters[0], "serial": counters[1]}))
        g._counters_sent = counters
    if g._shift:
        out.append(Mutation("shift_clock", {"shift": g._shift}))
        g._shift = 0.0
    for touched, dirty in ((g._touched_slots, g._dirty_slots), (g._touched_rows, g._dirty_rows)):
        due = [k for k, t in touched.items() if everything or g._now - t >= g.journal_refresh_s]
        dirty.update(due)
        for k in [k for k in touched if k in dirty]:
            del touched[k]
    for slot in sorted(g._dirty_slots):
        name = g._names[slot] if slot < len(g._names) else None
        if name is None:
            out.append(Mutation("remove_identity", {"slot": slot}))
        else:
            out.append(Mutation("upsert_identity", {"slot": slot, "name": name, "created": int(g.created[slot]),
                                                    "pinned": bool(g.pinned[slot]),
                                                    "last_seen": float(g.last_seen[slot]),
                                                    "camera": g._slot_camera.get(slot)}))
    v = g.visits
    for row in sorted(g._dirty_rows):
        if row >= v.capacity or not v.used[row]:
            out.append(Mutation("remove_visit", {"row": row}))
            continue
        visit = v.visit(row)
        out.append(Mutation("upsert_visit", {
            "row": row, "owner": int(v.owner[row]), "track": int(v.track[row]), "start": float(v.start[row]),
            "end": float(v.end[row]), "height": visit.height, "height_sigma": visit.height_sigma,
            "width": visit.width, "width_sigma": visit.width_sigma, "lit": visit.lit}, visit.vectors))
    g._dirty_slots.clear()
    g._dirty_rows.clear()
    return out


def apply_mutation(g: Gallery, m: Mutation) -> None:
    """Sets the state one record describes (idempotent but for ``shift_clock``; not reported as a change).

    Raises:
        ValueError: ``m`` has an unknown op, or a visit's vectors do not fit the stored feature sizes.
    """
    f = m.fields
    if m.op == "counters":
        g.next_id, g._serial = int(f["next_id"]), int(f["serial"])
        g._counters_sent = (g.next_id, g._serial)
    elif m.op == "shift_clock":  # the one op-based record: the journal's seq applies it once
        v, shift = g.visits, float(f["shift"])
        v.start[v.used] += shift
        v.end[v.used] += shift
        g.last_seen[: g.slots] += shift
    elif m.op in ("upsert_identity", "remove_identity"):
        slot = int(f["slot"])
        if slot >= len(g._names):
            for s in range(len(g._names), slot + 1):
                g._names.append(None)
                heapq.heappush(g._free, s)
        grow = len(g._names) - len(g.last_seen)
        if grow > 0:
            g.last_seen = np.concatenate([g.last_seen, np.zeros(grow)])
            g.pinned = np.concatenate([g.pinned, np.zeros(grow, bool)])
            g.created = np.concatenate([g.created, np.zeros(grow, np.int64)])
        old = g._names[slot]
        if old is not None:
            del g._slot[old]
        name = None if m.op == "remove_identity" else str(f["name"])
        if name is not None and name in g._slot:  # the name held another slot before
            other = g._slot.pop(name)
            g._names[other] = None
            heapq.heappush(g._free, other)
        g._names[slot] = name
        if name is not None:
            g._slot[name] = slot
            g.last_seen[slot], g.pinned[slot], g.created[slot] = \
                float(f["last_seen"]), bool(f["pinned"]), int(f["created"])
            if f.get("camera"):
                g._slot_camera[slot] = str(f["camera"])
            else:
                g._slot_camera.pop(slot, None)
            if old is None:
                g._free.remove(slot)
                heapq.heapify(g._free)
        else:
            g.pinned[slot] = False
            g._slot_camera.pop(slot, None)
            if old is not None:
                heapq.heappush(g._free, slot)
    elif m.op == "upsert_visit":
        put_visit(g.visits, int(f["row"]), f, m.arrays)
    elif m.op == "remove_visit":
        row = int(f["row"])
        if row < g.visits.capacity and g.visits.used[row]:
            g.visits.remove(row)
    else:
        raise ValueError(f"apply_mutation: unknown op {m.op!r}")


def settle(g: Gallery) -> None:
    """Marks the gallery as just loaded (snapshot, journal): no changes to report, and the first
    :meth:`Gallery.match` rebases the stored times if the new source's clock starts earlier."""
    ends = [*g.visits.end[g.visits.used], *g.last_seen[list(g._slot.values())]]
    g._rebase = float(max(ends)) if ends else None
    g._dirty_slots.clear()
    g._dirty_rows.clear()
    g._touched_slots.clear()
    g._touched_rows.clear()
    g._shift = 0.0
    g._counters_sent = (int(g.next_id), int(g._serial))


__all__ = ["apply_mutation", "drain_mutations", "settle"]
