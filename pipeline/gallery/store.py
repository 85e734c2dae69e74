"""The cross-modal gallery: identities as sets of visits, decided per track on fused, calibrated evidence.

Rules of :meth:`Gallery.match` (one call per frame):

1. Visits that ended more than ``max_age_s`` ago expire (enrolled identities excepted); an identity
   without visits is dropped (:attr:`Gallery.last_expired`).
2. Every track of the frame adds its frame to its :class:`~reidstream.pipeline.gallery.evidence.TrackEvidence`:
   embeddings per ``space/modality`` and colour statistics weighted by crop quality, body measures by
   inverse variance.
3. A new track is **pending** (``Match.pending``, no identity) until it has collected ``pending_s`` of
   evidence, or earlier once at least ``min_frames`` frames make the decision clear (best fused LLR
   ``decisive_margin`` above the threshold). A track whose best identity is then just below the threshold
   (within ``undecided_margin``) stays pending for more evidence, at most ``max_pending_s``. A pending
   track that leaves early is decided then, but one seen for less than ``min_new_s`` only joins an identity
   it passes the threshold for: a glimpse (a fragment of a track, a passer-by at the border) never founds one.
   Nor does a track detected in fewer than ``min_coverage`` of its frames (a person seen in flashes at the far
   end of the depth range): it joins an identity or stays pending for more frames.
4. **Decision**: the track's prototypes are scored against every stored visit (fused LLR, see
   :mod:`~reidstream.pipeline.gallery.fusion`); an identity scores its best visit. Identities seen at the
   same time as the track (a visit of another track overlapping it in time) are excluded: two tracks seen
   at once are never one person. A *handover* is not "at once": a visit that began before the track, is not
   in view now and was last seen less than ``handover_s`` after the track began (the tracker started a new
   track on a person while their old one lingered for a few frames, often on someone nearby); the old track,
   if it has not ended, is cut where the new one began (:func:`.drift.handed_over`). The piece of a
   track cut off by :mod:`.drift` is not "seen at once" with the visit it was cut from (that visit ends where
   the piece begins): it may go back to that identity if the identity's other visits say so. Tracks deciding
   in the same frame and seen at the same time are assigned optimally (Hungarian; tracks that never overlapped
   are decided one after the other), each with a "new identity" option at ``threshold``; below it the track
   starts a new identity. The threshold is the calibration's lit one for a lit track against an identity with
   a lit visit (colour cues on both sides), else its dark one (:meth:`Gallery.pair_thresholds`). The decisions
   are in :mod:`.decide`.
5. A decided track's visit is updated every frame and **re-checked** every ``recheck_s`` against the
   other visits: ``switch_after`` checks in a row in which another identity is ``switch_margin`` better
   (and above the threshold) move the visit there (merging away an identity left empty); as many checks
   in which the track's own identity scores below ``-switch_margin`` split it into a new identity.
   Each re-check also scores the track's last ``recheck_s`` against the rest of it: ``cut_after`` windows in
   a row that contradict it mean the tracker moved the track onto another person, and the track is cut
   there: its visit keeps the person before, the rest is a new pending track (:mod:`.drift`).
6. A track unseen for ``lost_s`` ends; a last part that contradicts the rest of it is cut off and decided
   on its own (:func:`.drift.tail`); a track that founded its identity joins another one that its whole
   evidence now puts ``switch_margin`` above the threshold (:meth:`Gallery._last_check`); its visit stays
   for the identity's lifetime (at most ``max_visits_per_identity``, the oldest dropped first). Past
   ``max_identities`` the least recently seen unpinned identities are evicted.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from reidstream.pipeline.gallery.topology import Topology
from reidstream.pipeline.gallery import actions, drift, mutations
from reidstream.pipeline.gallery import explain as explaining
from reidstream.pipeline.gallery.calibration import Calibration
from reidstream.pipeline.gallery.config import GalleryConfig
from reidstream.pipeline.gallery.cues import TrackCues
from reidstream.pipeline.gallery.decide import decide, last_check, ready_to_decide, recheck
from reidstream.pipeline.gallery.evidence import TrackEvidence, Visit, VisitTable, accumulate
from reidstream.pipeline.gallery.fusion import Explanation, fused_llr, per_identity
from reidstream.pipeline.gallery.journal import Mutation
from reidstream.pipeline.gallery.matcher import unit_rows
from reidstream.pipeline.types import Embeddings, Match, Modality


@dataclass
class _Track:
    evidence: TrackEvidence
    slot: int | None = None
    row: int = -1
    last_check: float = 0.0
    better: int = 0
    contrary: int = 0
    evidence_llr: float = 0.0
    modality: Modality = Modality.RGB
    new: bool = False
    camera: str | None = None
    window: TrackEvidence | None = None  # decided tracks: evidence since the last re-check (see .drift)
    anchor: Visit | None = None  # decided tracks: the track up to its window
    anchor_end: float = 0.0
    since_contrary: TrackEvidence | None = None  # evidence since the first window that contradicted the anchor
    contrary_windows: int = 0
    parent: tuple[int, float] | None = None  # a cut's piece: the visit it was cut from (row, start), see .drift


class Gallery:
    """Long-term identities, each a set of per-visit prototypes, decided per track (see the module docstring).

    Args:
        calibration: Cue models and the default threshold (from the bundle; see ``reid-export calibrate``).
        config: Settings; None: the defaults.
        journal_refresh_s: :meth:`drain_mutations` reports the running prototypes and times of a visit whose
            track goes on (and its identity's ``last_seen``) at most this often; every other change (a new
            identity or visit, a move, a removal, the end of a track) at once.
    """

    def __init__(self, calibration: Calibration | None = None, config: GalleryConfig | None = None, *,
                 journal_refresh_s: float = 2.0) -> None:
        self.calibration = calibration if calibration is not None else Calibration()
        self.config = config if config is not None else GalleryConfig()
        self.visits = VisitTable()
        self._names: list[str | None] = []
        self._slot: dict[str, int] = {}
        self._free: list[int] = []
        self.last_seen = np.zeros(0)
        self.pinned = np.zeros(0, bool)
        self.created = np.zeros(0, np.int64)
        self.next_id = 1
        self._serial = 0
        self._tracks: dict[int, _Track] = {}
        self.last_expired: list[str] = []
        self.last_resolved: dict[int, str] = {}
        """Tracks decided in the last :meth:`match` after they had left (``""``: dropped, too short)."""
        self.last_cut: list[int] = []
        """Tracks cut in the last :meth:`match` (:mod:`.drift`): from there on another person, pending again."""
        self.last_cut_from: dict[int, float] = {}
        """For each track of :attr:`last_cut`: the capture time from which its frames are the other person's (the
        start of its first contrary window); the logs move those frames to the new track
        (:class:`~reidstream.pipeline.sinks.relabel.Relabel`)."""
        self._rebase: float | None = None
        self.topology: Topology | None = None
        """The site's camera links and transit times (:mod:`~reidstream.pipeline.gallery.topology`); None: no
        prior from where and when an identity was last seen."""
        self._slot_camera: dict[int, str] = {}
        self.bundle: dict | None = None
        """Which bundle made the gallery's vectors (:func:`~reidstream.pipeline.gallery.persist.bundle_identity`),
        saved with it; None: not recorded."""
        self.journal_seq = 0
        """The last journal batch this gallery holds (see :mod:`~reidstream.pipeline.gallery.journal`)."""
        self.journal_refresh_s = float(journal_refresh_s)
        self._dirty_slots: set[int] = set()
        self._dirty_rows: set[int] = set()
        self._touched_slots: dict[int, float] = {}  # slot -> time of its first unreported refresh
        self._touched_rows: dict[int, float] = {}
        self._shift = 0.0  # clock shift not reported yet
        self._now = 0.0
        self._frame_dt: dict[str | None, tuple[float, deque]] = {}  # camera -> (last frame time, recent steps)
        self._counters_sent: tuple[int, int] | None = None
        self.name_allocator = None
        """Called for the name of each new identity (a shared gallery's atomic ids); None: ``id-NNNN`` from
        :attr:`next_id`."""
        self._explained_tracks: dict[int, tuple] = {}  # track id -> (Explanation, slot, created, runner-up key)
        self._explained_slots: dict[int, tuple] = {}  # identity slot -> the same, its latest decision
        self.explain_serial = 0
        """Counts the explanations kept (:meth:`explanation`): a reader copies them only when it changed."""

    @classmethod
    def from_config(cls, cfg: GalleryConfig, calibration: Calibration | None = None) -> "Gallery":
        return cls(calibration, cfg)

    @property
    def threshold(self) -> float:
        """The open-set threshold in use for lit tracks."""
        return self.threshold_for(True)

    def threshold_for(self, lit: bool) -> float:
        """The open-set threshold of a track seen mostly lit (or dark): ``gallery.threshold`` if set, else the
        calibration's for that light (fewer cues in the dark give smaller scores to strangers too)."""
        t = self.config.threshold
        return float(self.calibration.threshold_for(lit) if t is None else t)

    def pair_thresholds(self, lit: Sequence[bool]) -> np.ndarray:
        """Open-set thresholds of tracks (mostly ``lit`` or not) against every identity slot, ``T x slots``.

        A lit track against an identity that has a lit visit is decided on the lit threshold: both sides
        carry the colour cues the lit calibration was fitted with. Every other pair (a dark track, or an
        identity seen only in the dark) has only the light-independent cues (depth, infrared, height), as the
        dark tracks of the calibration had, and uses the dark threshold.
        """
        lit_th, dark_th = self.threshold_for(True), self.threshold_for(False)
        th = np.full((len(lit), self.slots), dark_th)
        if lit_th != dark_th and self.slots:
            v = self.visits
            seen_lit = np.zeros(self.slots, bool)
            seen_lit[v.owner[v.used & v.lit]] = True
            for t, is_lit in enumerate(lit):
                if is_lit:
                    th[t, seen_lit] = lit_th
        return th

    # ----------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, identity: object) -> bool:
        return identity in self._slot

    @property
    def slots(self) -> int:
        return len(self._names)

    def identities(self) -> list[str]:
        """Identity ids, oldest created first."""
        return sorted(self._slot, key=lambda name: self.created[self._slot[name]])

    def is_pinned(self, identity: str) -> bool:
        return bool(self.pinned[self._lookup(identity)])

    def visits_of(self, identity: str) -> int:
        """Number of stored visits of ``identity``."""
        return len(self.visits.rows_of(self._lookup(identity)))

    def identity_of(self, track_id: int) -> str | None:
        """The identity a live track holds (None: pending or unknown)."""
        st = self._tracks.get(int(track_id))
        return None if st is None or st.slot is None else self._names[st.slot]

    def stats(self) -> dict:
        return {"identities": len(self), "pinned": int(self.pinned[list(self._slot.values())].sum()),
                "visits": len(self.visits), "tracks": len(self._tracks),
                "pending": sum(st.slot is None for st in self._tracks.values()), "next_id": self.next_id}

    def _lookup(self, identity: str) -> int:
        if identity not in self._slot:
            raise KeyError(f"gallery has no identity '{identity}'")
        return self._slot[identity]

    # ----------------------------------------------------------- bookkeeping
    def _new_identity(self, name: str | None, timestamp: float, pinned: bool = False) -> int:
        if name is None and self.name_allocator is not None:
            name = self.name_allocator()
        if name is None:
            while f"id-{self.next_id:04d}" in self._slot:
                self.next_id += 1
            name = f"id-{self.next_id:04d}"
            self.next_id += 1
        if self._free:
            slot = heapq.heappop(self._free)
            self._names[slot] = name
        else:
            slot = len(self._names)
            self._names.append(name)
            if slot >= len(self.last_seen):
                grow = max(16, len(self.last_seen))
                self.last_seen = np.concatenate([self.last_seen, np.zeros(grow)])
                self.pinned = np.concatenate([self.pinned, np.zeros(grow, bool)])
                self.created = np.concatenate([self.created, np.zeros(grow, np.int64)])
        self._slot[name] = slot
        self.last_seen[slot], self.pinned[slot], self.created[slot] = timestamp, pinned, self._serial
        self._serial += 1
        self._dirty_slots.add(slot)
        return slot

    def _remove(self, slot: int) -> str:
        name = self._names[slot]
        self._slot_camera.pop(slot, None)
        self._dirty_slots.add(slot)
        for row in self.visits.rows_of(slot):
            self.visits.remove(int(row))
            self._dirty_rows.add(int(row))
        for st in self._tracks.values():
            if st.slot == slot:
                st.slot, st.row = None, -1
        del self._slot[name]
        self._names[slot] = None
        self.pinned[slot] = False
        heapq.heappush(self._free, slot)
        return name

    def _bound_visits(self, slot: int) -> None:
        rows = self.visits.rows_of(slot)
        live = {st.row for st in self._tracks.values()}
        extra = len(rows) - self.config.max_visits_per_identity
        for row in sorted((r for r in rows if r not in live), key=lambda r: self.visits.end[r])[: max(extra, 0)]:
            self.visits.remove(int(row))
            self._dirty_rows.add(int(row))

    def expire(self, timestamp: float) -> list[str]:
        """Drops visits older than ``max_age_s``, identities left without visits, and enforces ``max_identities``."""
        v, live = self.visits, {st.row for st in self._tracks.values()}
        if not self.slots:
            return []
        old = v.used & (v.end < timestamp - self.config.max_age_s) & ~self.pinned[np.minimum(v.owner, self.slots - 1)]
        for row in np.flatnonzero(old):
            if int(row) not in live:
                v.remove(int(row))
                self._dirty_rows.add(int(row))
        counts = np.bincount(v.owner[v.used], minlength=self.slots) if self.slots else np.zeros(0, int)
        busy = {st.slot for st in self._tracks.values() if st.slot is not None}
        gone = [self._remove(s) for s in sorted(self._slot.values())
                if counts[s] == 0 and not self.pinned[s] and s not in busy]
        excess = len(self._slot) - self.config.max_identities
        if excess > 0:
            loose = sorted((s for s in self._slot.values() if not self.pinned[s] and s not in busy),
                           key=lambda s: (self.last_seen[s], self.created[s]))
            gone += [self._remove(s) for s in loose[:excess]]
        return gone

    # ------------------------------------------------------------ evidence
    def _observe(self, observations: Sequence[Embeddings], cues: TrackCues | None, timestamp: float) -> list[int]:
        def stores(tid: int) -> list[TrackEvidence]:
            if tid not in self._tracks:
                self._tracks[tid] = _Track(TrackEvidence(timestamp), last_check=timestamp)
            return drift.stores(self._tracks[tid])

        present = accumulate(observations, cues, timestamp, stores)
        for obs in observations:
            for tid in np.unique(obs.track_ids).tolist():
                st = self._tracks[int(tid)]
                if st.evidence.frames == 1:
                    st.modality = obs.modality
        return present

    def _scores(self, states: Sequence[_Track], exclude_own: bool = True, explain: bool = False,
                summaries: list | None = None) -> tuple:
        """Fused LLR of tracks against identities (``Q x slots``), co-visible identities excluded: ``(score,
        fused, summaries)``, and with ``explain`` also ``(summaries, topology prior or None)`` for :meth:`_explain`.
        ``summaries``: the evidence scored (default: each track's whole evidence)."""
        summaries = [st.evidence.summary() for st in states] if summaries is None else summaries
        fused = fused_llr(summaries, self.visits, self.calibration)
        prior = None
        v = self.visits
        for t, st in enumerate(states):
            if exclude_own and st.row >= 0:
                fused[t, st.row] = -np.inf
            # a track that began before this one and was last seen less than handover_s into it, not now: the
            # tracker handed one person over to a new track (its old one had drifted or was about to be lost).
            # Its identity is not barred, but that visit is no evidence: its last frames may be anyone nearby.
            during, handover = self._during(st)
            fused[t, handover] = -np.inf
            overlap = during & ~handover
            if st.parent is not None and v.used[st.parent[0]] and v.start[st.parent[0]] == st.parent[1]:
                overlap[st.parent[0]] = False  # it ends where the piece begins: the same track, not a second person
            busy = np.unique(v.owner[overlap])
            fused[t, np.isin(v.owner, busy) & v.used] = -np.inf
        score = per_identity(fused, v.owner, v.used, self.slots)
        if self.topology is not None and self.slots:
            cams = [self._slot_camera.get(s) if self._names[s] is not None else None for s in range(self.slots)]
            prior = self.topology.prior([st.camera for st in states], [st.evidence.first_seen for st in states],
                                        cams, self.last_seen[: self.slots])
            score = score + prior
        return (score, fused, summaries, (summaries, prior)) if explain else (score, fused, summaries)

    def _during(self, st: _Track) -> tuple[np.ndarray, np.ndarray]:
        """Visit rows of other tracks seen while ``st`` was (``during``), and among them the *handovers* (rule 4)."""
        v, first = self.visits, st.evidence.first_seen
        during = v.used & (v.end >= first) & (np.arange(v.capacity) != st.row) & self._covisible_rows()
        handover = during & (v.end < self._now) & (v.start < first) & (v.end - first < self.config.handover_s)
        return during, handover

    def _covisible_rows(self) -> np.ndarray | bool:
        """Visit rows whose overlap in time with a track excludes their identity from it (seen at once): all
        of them here; a shared gallery (:mod:`~reidstream.pipeline.gallery.shared`) keeps only its own
        cameras' rows, since another site's camera may see the same person at the same time."""
        return True

    # --------------------------------------------------------------- decisions
    def _decide(self, states: list[_Track], timestamp: float, ended: bool = False, join_only: bool = False) -> None:
        """Decides ``states`` (rule 4; :func:`.decide.decide`)."""
        decide(self, states, timestamp, ended, join_only)

    def _recheck(self, states: list[_Track], timestamp: float) -> None:
        """Re-checks decided tracks (rule 5; :func:`.decide.recheck`)."""
        recheck(self, states, timestamp)

    def _last_check(self, st: _Track, timestamp: float, summary=None) -> None:
        """The last check of a track that founded its identity (rule 6; :func:`.decide.last_check`)."""
        last_check(self, st, timestamp, summary)

    def _move(self, st: _Track, slot: int, timestamp: float) -> None:
        old = st.slot
        self.visits.owner[st.row] = slot
        st.slot, st.better, st.contrary = slot, 0, 0
        self.last_seen[slot] = timestamp
        if st.camera is not None:
            self._slot_camera[slot] = st.camera
        self._dirty_rows.add(st.row)
        self._dirty_slots.add(slot)
        if old is not None and not len(self.visits.rows_of(old)) and not self.pinned[old]:
            self.last_expired.append(self._remove(old))  # merged into ``slot``
        self._bound_visits(slot)


    # ------------------------------------------------------------ evidence shown
    def explanation(self, key: int | str) -> Explanation | None:
        """The evidence behind a track's or identity's latest decision (:func:`.explain.explanation`)."""
        return explaining.explanation(self, key)

    def explanations(self) -> tuple[dict[str, Explanation], dict[int, Explanation]]:
        """Every kept explanation, by identity name and by live track id (:func:`.explain.explanations`)."""
        return explaining.explanations(self)

    # --------------------------------------------------------------- match
    def match(self, observations: Sequence[Embeddings], timestamp: float, cues: TrackCues | None = None, *,
              camera: str | None = None) -> list[Match]:
        """Adds one frame's evidence, makes the decisions that are due, and reports every track of the frame.

        Args:
            observations: Embeddings of the frame (several spaces/modalities share track ids).
            timestamp: Frame time in seconds.
            cues: Quality, body measures and colour statistics of the frame's tracks (None: quality 1, none else).
            camera: The camera of the frame (for the site's :attr:`topology`; None: unknown).

        Returns:
            One :class:`Match` per track of the frame, sorted by track id; ``pending`` while undecided.
        """
        if self._rebase is not None:
            self._rebase_clock(timestamp)
        c = self.config
        self.last_expired, self.last_resolved, self.last_cut, self._now = [], {}, [], float(timestamp)
        last, steps = self._frame_dt.get(camera, (None, deque(maxlen=15)))
        if last is not None and timestamp > last:
            steps.append(timestamp - last)  # the camera's frame interval (their median), for a track's coverage
        self._frame_dt[camera] = (float(timestamp), steps)
        self.last_cut_from = {}
        for tid, st in list(self._tracks.items()):
            if self._tracks.get(tid) is not st:
                continue  # cut while another track was decided in this loop (a handover, :func:`.drift.handed_over`)
            if timestamp - st.evidence.last_seen > c.lost_s:
                if st.slot is None:
                    if st.evidence.frames >= c.min_frames:
                        self._decide([st], timestamp, ended=True)
                    self.last_resolved[tid] = "" if st.slot is None else self._names[st.slot]
                else:
                    cut_off = c.cut_after > 0 and drift.tail(self, tid, st, timestamp)
                    if st.new:  # a cut-off tail is another person's: the check scores what is left
                        self._last_check(st, timestamp, st.anchor if cut_off else None)
                self._ended(st)
                del self._tracks[tid]
        self.last_expired += self.expire(timestamp)
        frame_index = int(observations[0].frame_index) if observations else 0
        present = self._observe(observations, cues, timestamp)
        for tid in present:
            st = self._tracks[tid]
            if st.camera is None:
                st.camera = camera
            if st.slot is not None:
                self.visits.set(st.row, st.evidence.summary(), st.evidence.first_seen, st.evidence.last_seen)
                self.last_seen[st.slot] = timestamp
                if st.camera is not None:
                    self._slot_camera[st.slot] = st.camera
                self._touched_rows.setdefault(st.row, timestamp)
                self._touched_slots.setdefault(st.slot, timestamp)
        ready = self._ready([self._tracks[tid] for tid in present if self._tracks[tid].slot is None], timestamp)
        if ready:
            self._decide(ready, timestamp)
        due = [st for tid in present if (st := self._tracks[tid]).slot is not None and st not in ready
               and timestamp - st.last_check >= c.recheck_s]
        if due:
            self._recheck(due, timestamp)
            for st in drift.check(self, due, timestamp):
                drift.cut(self, st)
        out = []
        for tid in present:
            st = self._tracks[tid]
            if st.slot is None:
                out.append(Match(tid, "", 0.0, st.modality, "", False, frame_index, pending=True))
            else:
                out.append(Match(tid, self._names[st.slot], 0.0, st.modality, "fused", st.new and st in ready,
                                 frame_index, evidence=st.evidence_llr))
        return out

    def finish(self, timestamp: float) -> dict[int, str]:
        """Ends every track (the stream is over): pending ones with ``min_frames`` are decided now.

        Returns:
            Track id -> identity of the tracks that were still pending (``""``: too short, dropped).
        """
        out = {}
        pending = [(tid, st) for tid, st in self._tracks.items() if st.slot is None]
        ready = [st for _, st in pending if st.evidence.frames >= self.config.min_frames]
        if ready:  # still in view when the stream stops: not a glimpse (``min_new_s``), decided as they are
            self._decide(ready, timestamp)
        for tid, st in pending:
            out[tid] = "" if st.slot is None else self._names[st.slot]
        for st in self._tracks.values():
            self._ended(st)
        self._tracks.clear()
        return out

    def _rebase_clock(self, timestamp: float) -> None:
        """After a reload: if the new stream's clock starts before the saved one ended (a replay, a restarted
        camera), shift the stored times so the saved visits ended just before it (1 s), keeping their spacing:
        stored visits must neither look concurrent with new tracks nor expire by a clock jump."""
        saved, self._rebase = self._rebase, None
        if timestamp >= saved:
            return
        shift = timestamp - saved - 1.0
        v = self.visits
        v.start[v.used] += shift
        v.end[v.used] += shift
        self.last_seen[: self.slots] += shift
        self._shift += shift

    def _ready(self, pending: list[_Track], timestamp: float) -> list[_Track]:
        """The pending tracks to decide now (rule 3; :func:`.decide.ready_to_decide`)."""
        return ready_to_decide(self, pending, timestamp)

    # ------------------------------------------------------------ enrolment
    def enrol(self, name: str, observations: Sequence[Embeddings], timestamp: float) -> str:
        """Adds a named, pinned identity with one visit made of all the given embeddings (track ids ignored).

        Raises:
            ValueError: ``name`` is empty or taken, or there are no vectors.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"enrol: expected a non-empty name, got {name!r}")
        if name in self._slot:
            raise ValueError(f"enrol: identity name '{name}' is already in the gallery; names must be unique")
        if not any(len(o) for o in observations):
            raise ValueError(f"enrol '{name}': expected at least one embedding vector, got none")
        ev = TrackEvidence(timestamp)
        ev.add_frame(timestamp, 1.0, True, np.nan, np.inf, np.nan, np.inf, None)
        for i, obs in enumerate(observations):
            if not isinstance(obs, Embeddings):
                raise ValueError(f"enrol '{name}': observations[{i}]: expected Embeddings, got {type(obs).__name__}")
            for v in unit_rows(obs, f"enrol '{name}': observations[{i}]"):
                ev.add_vector(f"{obs.space}/{obs.modality.value}", v, 1.0)
        slot = self._new_identity(name, timestamp, pinned=True)
        self._dirty_rows.add(self.visits.add(slot, -1, ev.summary(), timestamp, timestamp))
        self.last_expired = self.expire(timestamp)
        return name


    # ------------------------------------------------------- operator actions
    def rename(self, identity: str, name: str, *, pin: bool = True) -> str:
        """Gives ``identity`` a new name and, with ``pin``, pins it (:func:`.actions.rename`)."""
        return actions.rename(self, identity, name, pin=pin)

    def merge(self, keep: str, gone: str) -> str:
        """Moves every visit and live track of ``gone`` to ``keep``, removing ``gone`` (:func:`.actions.merge`)."""
        return actions.merge(self, keep, gone)

    def forget(self, identity: str) -> str:
        """Erases ``identity``, its visits and its live tracks' evidence (:func:`.actions.forget`)."""
        return actions.forget(self, identity)

    def split(self, identity: str, rows: Sequence[int]) -> str:
        """Moves visit ``rows`` of ``identity`` to a new identity, returning its name (:func:`.actions.split`)."""
        return actions.split(self, identity, rows)

    def visit_rows(self, identity: str) -> list[int]:
        """The visit rows of ``identity``, oldest first (:func:`.actions.visit_rows`)."""
        return actions.visit_rows(self, identity)

    # ------------------------------------------------------------- journal
    def _ended(self, st: _Track) -> None:
        """A track ends: its visit's and identity's last state is reported at the next drain."""
        if st.slot is not None and st.row >= 0:
            self._dirty_rows.add(st.row)
            self._dirty_slots.add(st.slot)


    def drain_mutations(self, everything: bool = False) -> list[Mutation]:
        """The changes since the last call, as journal records (:func:`.mutations.drain_mutations`)."""
        return mutations.drain_mutations(self, everything)

    def apply_mutation(self, m: Mutation) -> None:
        """Sets the state one journal record describes (:func:`.mutations.apply_mutation`)."""
        mutations.apply_mutation(self, m)

    def settle(self) -> None:
        """Marks the gallery as just loaded, with no changes to report (:func:`.mutations.settle`)."""
        mutations.settle(self)


__all__ = ["Gallery", "GalleryConfig"]
