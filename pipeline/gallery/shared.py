"""A gallery shared by several reid-stream processes through Redis (``gallery.url``; docs/identity.md).

Each worker keeps a whole local replica (a :class:`~reidstream.pipeline.gallery.store.Gallery`) and
decides its tracks on it, so matching is as fast as in-process. In step with it through Redis:

- **Names**: new identities take ``id-NNNN`` from an atomic counter (``INCR {prefix}:next_id``); a few
  numbers are reserved at start for outages (past them: ``id-<worker>-NNNN``).
- **Mutations**: every frame's changes (the gallery's state-based records,
  :mod:`~reidstream.pipeline.gallery.journal`) go to the Stream ``{prefix}:mutations`` with *global* keys:
  an identity by name, a visit by ``(worker key, local row)``. Each worker reads the others' entries
  (in a background thread, :mod:`~reidstream.pipeline.gallery.redis_link`) and applies them at its next
  :meth:`SharedGallery.match`, mapping global keys to its own slots and rows. A worker publishes only the
  visits it recorded itself; identity removals (expiry) by name.
- **Co-visibility** (two tracks seen at once are two people) only excludes identities seen at the same time
  by *this worker's* cameras: another worker's camera may see the same person at the same time.
- **Merges**: two workers that create an identity for one person at once converge through an explicit
  ``merge {from, into}``, always from the younger id into the older (pinned first, then the lower number),
  so both sides agree. A merge is published when a re-check would move a track off an identity that is
  left empty (the younger of the two is merged into the older one instead) and by the duplicate check
  every ``dup_check_s``: one of this worker's recent visits scoring another identity above its threshold
  + ``decisive_margin``, that identity not seen at the same time by this worker.
- **Events** for downstream consumers go to ``{prefix}:events`` (``new`` / ``matched`` / ``merge`` /
  ``expired`` with ``identity``, ``camera``, ``worker``, ``time``; capped at ``events_maxlen`` entries).
- **Outages**: losing Redis does not stop a camera: entries are buffered (bounded, overflow counted),
  the link reconnects with back-off and sends them in order (:meth:`SharedGallery.sync_status`).

All workers must share one clock (frame times in Unix seconds, or one site clock): visit times decide
co-visibility and expiry on every replica.
"""

from __future__ import annotations

import json
import os
import re
import socket
import uuid

import numpy as np
from reidstream.pipeline.gallery.evidence import VisitTable
from reidstream.pipeline.gallery.fusion import fused_llr, per_identity
from reidstream.pipeline.gallery.journal import Mutation
from reidstream.pipeline.gallery.redis_link import (
    RedisLink,
    SharedGalleryError,
    parse_url,
)
from reidstream.pipeline.gallery.store import Gallery
from reidstream.pipeline.runner import TRACK_SPAN

_NUMBER = re.compile(r"^id-(\d+)$")


class _Visits(VisitTable):
    """A visit table that tells the gallery when a row is removed (to forget its global key)."""

    on_remove = None

    def remove(self, row: int) -> None:
        super().remove(row)
        if self.on_remove is not None:
            self.on_remove(int(row))


class SharedGallery(Gallery):
    """A :class:`Gallery` replica kept in step with other workers through Redis (see the module docstring).

    Args:
        url: ``redis://host:port/db`` (options ``?prefix=...&worker=...`` may be added to it).
        calibration: As for :class:`Gallery`.
        config: As for :class:`Gallery`.
        worker: This worker's name (default: the URL's ``worker``, else ``host-pid``); a random suffix
            keeps each run's visit keys apart.
        prefix: Redis key prefix (default: the URL's ``prefix``, else ``reid``).
        max_buffered: Most mutations held while Redis is unreachable.
        dup_check_s: Period of the duplicate-identity check (frame time).
        reserve: Identity numbers reserved for outages.
        events_maxlen: Approximate cap of the events stream.
        journal_refresh_s: How often a running visit's prototypes are published.

    Raises:
        SharedGalleryError: ``url`` is malformed or its server unreachable (the message names ``gallery.url``).
    """

    def __init__(self, url: str, calibration=None, config=None, *, worker: str | None = None,
                 prefix: str | None = None, max_buffered: int = 100_000, dup_check_s: float = 1.0,
                 reserve: int = 16, events_maxlen: int = 100_000, journal_refresh_s: float = 0.5) -> None:
        super().__init__(calibration, config, journal_refresh_s=journal_refresh_s)
        redis_url, opts = parse_url(url)
        self.prefix = prefix or opts.get("prefix", "reid")
        self.worker = worker or opts.get("worker") or f"{socket.gethostname()}-{os.getpid()}"
        self.key = f"{self.worker}.{uuid.uuid4().hex[:8]}"
        self.visits = _Visits()
        self.visits.on_remove = self._row_removed
        self._rowmap: dict[tuple[str, int], int] = {}
        self._rowkey: dict[int, tuple[str, int]] = {}
        self._merged: dict[str, str] = {}
        self._gone: list[str] = []
        self._merges: list[tuple[str, str]] = []
        self._outbox: list[Mutation] = []
        self._reported: dict[int, str] = {}
        self._applying = False
        self._republish: set[int] = set()
        self._fallback = 0
        self.dup_check_s, self.events_maxlen = float(dup_check_s), int(events_maxlen)
        self._last_dup = -np.inf
        self.merges_applied = 0
        self.link = RedisLink(redis_url, f"{self.prefix}:mutations", self.key, f"{self.prefix}:next_id",
                              max_buffered=max_buffered, shown_url=url)
        first = self.link.call(lambda c: c.incrby(self.link.counter, reserve)) or reserve
        self._reserve = list(range(first - reserve + 1, first + 1))
        self.link.min_counter = first
        self.name_allocator = self._allocate
        self._sync_in()

    # ------------------------------------------------------------- names
    def _allocate(self) -> str:
        n = self.link.call(lambda c: c.incr(self.link.counter))
        if n is None and self._reserve:
            n = self._reserve.pop(0)
        if n is None:
            self._fallback += 1
            return f"id-{self.key}-{self._fallback:04d}"
        self.link.min_counter = max(self.link.min_counter, int(n))
        return f"id-{int(n):04d}"

    def _rank(self, slot: int) -> tuple:
        """Merge order: the smaller survives (pinned first, then the lower id number, then the name)."""
        name = self._names[slot]
        m = _NUMBER.match(name)
        return (not self.pinned[slot], int(m.group(1)) if m else 1 << 62, name)

    # ------------------------------------------------------------- status
    def sync_status(self) -> tuple[float, int]:
        """``(lag_seconds, buffered_mutations)`` of the Redis link (polled by the metrics sink)."""
        return self.link.sync_status()

    def close(self, timeout: float = 2.0) -> None:
        """Publishes what is pending (up to ``timeout`` s) and stops the link."""
        self._publish(super().drain_mutations(True), 0.0)
        self.link.close(timeout)

    # ------------------------------------------------------------- frames
    def match(self, observations, timestamp, cues=None, *, camera=None):
        """:meth:`Gallery.match` on the replica, after applying the other workers' changes; publishes this
        frame's changes and events."""
        self._sync_in()
        out = super().match(observations, timestamp, cues, camera=camera)
        expired = [n for n in self.last_expired if n not in self._merged]
        self._publish(super().drain_mutations(), timestamp)
        for m in out:
            if not m.pending and self._reported.get(m.track_id) != m.identity:
                self._reported[m.track_id] = m.identity
                self._event("new" if m.is_new else "matched", m.identity, timestamp, m.track_id)
        for name in expired:
            self._event("expired", name, timestamp)
        for tid in self.last_resolved:
            self._reported.pop(tid, None)
        if timestamp - self._last_dup >= self.dup_check_s:
            self._last_dup = timestamp
            self._dedupe(timestamp)
        return out

    def finish(self, timestamp: float) -> dict[int, str]:
        """:meth:`Gallery.finish`, then publishes everything pending, waits (2 s at most) for it to be sent and
        catches up with the other workers (:meth:`catch_up`, 1 s at most)."""
        out = super().finish(timestamp)
        self._publish(super().drain_mutations(True), timestamp)
        self.link.flush(2.0)
        self.catch_up(1.0)
        return out

    def catch_up(self, timeout: float = 2.0) -> bool:
        """Applies every change the other workers had published when called, waiting up to ``timeout`` s for
        it to be read (what arrived is applied either way). Returns False when Redis is unreachable or the
        time ran out. :meth:`finish` calls it, so the replica a worker saves at its end holds what the others
        published until then."""
        done = self.link.read_to_end(timeout)
        self._sync_in()
        return done

    def drain_mutations(self, everything: bool = False) -> list[Mutation]:
        """The local records since the last call (for a local journal); also publishes them."""
        self._publish(super().drain_mutations(everything), self._now)
        out, self._outbox = self._outbox, []
        return out

    # ------------------------------------------------------------- outbound
    def _event(self, kind: str, identity: str, t: float, track: int = -1, **extra) -> None:
        camera = str(track // TRACK_SPAN) if track >= 0 else ""
        fields = {"kind": kind, "identity": identity, "camera": camera, "worker": self.worker, "time": repr(t),
                  "track": str(track % TRACK_SPAN if track >= 0 else -1), **extra}
        self.link.publish(f"{self.prefix}:events", fields, 0, self.events_maxlen)

    def _remove(self, slot: int) -> str:
        name = super()._remove(slot)
        if not self._applying:
            self._gone.append(name)
        return name

    def _row_removed(self, row: int) -> None:
        key = self._rowkey.pop(row, None)
        if key is not None:
            self._rowmap.pop(key, None)

    def _publish(self, muts: list[Mutation], t: float) -> None:
        self._outbox = (self._outbox + muts)[-10_000:]
        recs = [{"op": "merge", "from": a, "into": b} for a, b in self._merges]
        for m in muts:
            if m.op == "upsert_identity":
                recs.append(m.to_dict())
            elif m.op in ("upsert_visit", "remove_visit") and m.fields["row"] not in self._rowkey:
                d = m.to_dict()
                if m.op == "upsert_visit":
                    d["name"] = self._names[m.fields["owner"]]
                recs.append({**d, "w": self.key})
        recs += [{"op": "remove_identity", "name": n} for n in self._gone if n not in self._slot]
        for a, b in self._merges:
            self._event("merge", b, t, **{"from": a, "into": b})
        self._merges, self._gone = [], []
        if recs:
            self.link.publish(self.link.stream, {"w": self.key, "b": json.dumps(recs, separators=(",", ":"))},
                              len(recs))

    # ------------------------------------------------------------- merges
    def _merge(self, frm: int, into: int, publish: bool) -> None:
        """Moves every visit (and live track) of slot ``frm`` to ``into`` and removes ``frm``."""
        a, b = self._names[frm], self._names[into]
        for row in self.visits.rows_of(frm):
            self.visits.owner[row] = into
            self._dirty_rows.add(int(row))
        for st in self._tracks.values():
            if st.slot == frm:
                st.slot = into
        self.last_seen[into] = max(self.last_seen[into], self.last_seen[frm])
        self._dirty_slots.add(into)
        self._remove(frm)
        self._merged[a] = b
        self.merges_applied += 1
        if publish:
            self._merges.append((a, b))
        self._bound_visits(into)

    def _move(self, st, slot: int, timestamp: float) -> None:
        old = st.slot
        if old is not None and old != slot and not self.pinned[old] and \
                set(self.visits.rows_of(old).tolist()) <= {st.row} and self._rank(old) < self._rank(slot):
            self._merge(slot, old, True)  # merge the younger identity into the track's (older) one instead
            st.better = st.contrary = 0
            return
        name = self._names[old] if old is not None else None
        super()._move(st, slot, timestamp)
        if name is not None and name not in self._slot:  # left empty: merged into the track's new identity
            self._merged[name] = self._names[slot]
            self._merges.append((name, self._names[slot]))

    def _dedupe(self, timestamp: float) -> None:
        """Merges identities decisively the same (see the module docstring)."""
        v = self.visits
        own = v.used.copy()
        own[list(self._rowkey)] = False
        rows = np.flatnonzero(own & (v.end >= timestamp - 2 * self.dup_check_s - self.config.lost_s))
        if not len(rows) or len(self) < 2:
            return
        fused = fused_llr([v.visit(int(r)) for r in rows], v, self.calibration)
        for i, r in enumerate(rows.tolist()):
            a = int(v.owner[r])
            if self._names[a] is None:
                continue
            seen = own & (v.end >= v.start[r]) & (v.start <= v.end[r])
            bad = np.isin(v.owner, np.unique(v.owner[seen])) | (v.owner == a) | ~v.used
            score = per_identity(np.where(bad, -np.inf, fused[i])[None], v.owner, v.used, self.slots)[0]
            b = int(np.argmax(score)) if len(score) else -1
            if b < 0 or self._names[b] is None or self.pinned[a] and self.pinned[b] or \
                    score[b] <= self.pair_thresholds([bool(v.lit[r])])[0, b] + self.config.decisive_margin:
                continue
            frm, into = (a, b) if self._rank(b) < self._rank(a) else (b, a)
            self._merge(frm, into, True)
        self._publish(super().drain_mutations(), timestamp)

    # ------------------------------------------------------------- inbound
    def _ensure(self, name: str, last_seen: float, pinned: bool = False) -> int:
        if name in self._slot:
            return self._slot[name]
        slot = self._free[0] if self._free else len(self._names)
        self.apply_mutation(Mutation("upsert_identity", {"slot": slot, "name": name, "created": self._serial,
                                                         "pinned": pinned, "last_seen": last_seen}))
        self._serial += 1
        return slot

    def _sync_in(self) -> None:
        """Applies the other workers' entries read since the last call."""
        if self.link.resync:  # the server lost its data, or the buffer overflowed: republish own state
            self.link.resync = False
            own = [r for r in np.flatnonzero(self.visits.used).tolist() if r not in self._rowkey]
            self._dirty_rows.update(own)
            self._dirty_slots.update(int(self.visits.owner[r]) for r in own)
        entries = self.link.received()
        if not entries:
            return
        dirty = set(self._dirty_slots), set(self._dirty_rows)
        self._applying = True
        try:
            for entry_id, fields in entries:
                for rec in json.loads(fields["b"]):
                    self._apply(rec, f"{self.link.stream} entry {entry_id}")
        finally:
            self._applying = False
            self._dirty_slots, self._dirty_rows = dirty
            self._dirty_slots |= {s for s in self._republish if self._names[s] is not None}
            self._republish = set()
        self.link.min_counter = max([self.link.min_counter, *(int(m.group(1)) for n in self._slot
                                                              if (m := _NUMBER.match(n)))])

    def _apply(self, rec: dict, where: str) -> None:
        op = rec.get("op")
        if op == "merge":
            a, b = rec["from"], self._follow(rec["into"])
            if a in self._slot and a != b:
                self._merge(self._slot[a], self._ensure(b, float(self.last_seen[self._slot[a]])), False)
            self._merged[a] = b
        elif op == "upsert_identity":
            name = rec["name"]
            if name in self._merged:
                return
            slot = self._ensure(name, float(rec["last_seen"]), bool(rec["pinned"]))
            if rec.get("camera") and float(rec["last_seen"]) >= self.last_seen[slot]:
                self._slot_camera[slot] = str(rec["camera"])  # where it was seen last, for the site's links
            self.last_seen[slot] = max(self.last_seen[slot], float(rec["last_seen"]))
            self.pinned[slot] |= bool(rec["pinned"])
        elif op == "remove_identity":
            slot = self._slot.get(rec["name"])
            if slot is None:
                return
            if any(st.slot == slot for st in self._tracks.values()):  # still in use here: republish it
                self._republish.add(slot)
                return
            self._remove(slot)
        elif op in ("upsert_visit", "remove_visit"):
            key = (str(rec["w"]), int(rec["row"]))
            row = self._rowmap.get(key)
            if op == "remove_visit":
                if row is not None:
                    self.visits.remove(row)
                return
            m = Mutation.from_dict(rec, where)
            owner = self._ensure(self._follow(rec["name"]), float(m.fields["end"]))
            if row is None:
                row = self.visits._free[-1] if self.visits._free else self.visits.capacity
            self.apply_mutation(Mutation("upsert_visit", {**m.fields, "row": row, "owner": owner}, m.arrays))
            self._rowmap[key], self._rowkey[row] = row, key
        else:
            raise ValueError(f"{where}: unknown shared-gallery record {op!r}")

    def _follow(self, name: str) -> str:
        seen = set()
        while name in self._merged and name not in seen:
            seen.add(name)
            name = self._merged[name]
        return name

    def _covisible_rows(self) -> np.ndarray:
        mask = np.ones(self.visits.capacity, bool)
        if self._rowkey:
            mask[list(self._rowkey)] = False
        return mask


def shared_gallery(url: str, calibration=None, config=None) -> SharedGallery:
    """The gallery of ``gallery.url`` (raises :class:`SharedGalleryError` naming it when it cannot start)."""
    return SharedGallery(url, calibration, config)


__all__ = ["SharedGallery", "SharedGalleryError", "shared_gallery"]
