"""Relabelling: file sinks receive a pending track's frames only once its identity is decided.

The gallery decides a track's identity after it has collected evidence (about a second). The live view
shows those frames as "pending" at once; the logs (MOT tracks, events, frames for scoring) should carry
the identity the track was finally given. :class:`Relabel` holds results back while any of their tracks
is pending, and hands them on, in order, with the decided identity filled in (in ``identities`` and in
the track's ``pending`` event) as soon as the decision is known: from a later frame's match of that
track, or from ``FrameResult.resolved`` for a track the gallery decided after it left the view.

Two revisions reach back further (both off with ``revise_s`` 0):

* A *switch*: the gallery's re-checks move a decided track to another identity within ``revise_s`` of its
  first decision (a returning person first taken for someone new); its frames since then are written with
  the identity it switched to.
* A *cut* (``FrameResult.cuts``): the gallery found that the tracker had carried a track onto another person
  and cut it; the track's frames since the start of its first contrary re-check window (``cut_after``
  windows before the cut) are moved to the new track and written with the identity the new track is given.
  For that, every result is held at least ``hold_s`` seconds of capture time.
"""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np

from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.types import Detections
from reidstream.pipeline.sinks.fanout import Sink, SinkBase


_FORGET_S = 300.0


class Relabel(SinkBase):
    """Delays results with pending tracks until those tracks are decided (see the module docstring).

    Args:
        sink: Where the relabelled results go (e.g. a :class:`~reidstream.pipeline.sinks.fanout.FanOut`).
        max_delay: Results held at most this many frames; older ones go on as they are (identity ``""``).
        revise_s: Seconds (capture time) after a track's first decision during which a switch relabels its
            earlier frames (0: only pending frames are relabelled).
        hold_s: Seconds (capture time) every result is held, so that a cut can move its frames to the new
            track (at least the span of ``cut_after`` re-checks; 0: cuts move only frames still held anyway).
        strip_pixels: Hold and hand on results without their images (a 1 x 1 stand-in; time, index, camera,
            detections, annotations and ``lit`` kept), for sinks that never read pixels (the logs): a held
            640 x 480 colour + depth + IR frame costs ~2 MB otherwise. A result whose ``lit`` is unknown keeps
            its colour image (``reid-score``'s light test reads it).
    """

    name = "relabel"

    def __init__(self, sink: Sink, max_delay: int = 600, revise_s: float = 0.0, hold_s: float = 0.0,
                 strip_pixels: bool = False) -> None:
        if max_delay < 0:
            raise ValueError(f"Relabel: expected max_delay >= 0, got {max_delay}")
        if not revise_s >= 0:
            raise ValueError(f"Relabel: expected revise_s >= 0, got {revise_s}")
        if not hold_s >= 0:
            raise ValueError(f"Relabel: expected hold_s >= 0, got {hold_s}")
        self.sink, self.max_delay, self.revise_s, self.hold_s = sink, int(max_delay), float(revise_s), float(hold_s)
        self.strip_pixels = bool(strip_pixels)
        self._held: deque[FrameResult] = deque()
        self._pending: set[tuple[str, int]] = set()
        self._decided: dict[tuple[str, int], str] = {}
        self._first: dict[tuple[str, int], tuple[float, str]] = {}  # first decision: (time, identity)
        self._seen: dict[tuple[str, int], float] = {}  # when each track was last in a result
        self._start: dict[tuple[str, int], int] = {}  # first frame of the track's current stretch (after a cut)
        # switches within revise_s, per track: [first frame, frame after the stretch (None: open), earlier, latest]
        self._switched: dict[tuple[str, int], list[list]] = {}
        self._now: dict[str, float] = {}

    def _write(self, result: FrameResult) -> None:
        if self.strip_pixels:
            result = _without_pixels(result)
        cam = result.frame.camera_id
        now = self._now[cam] = max(self._now.get(cam, result.frame.timestamp), result.frame.timestamp)
        if result.cuts:
            result = self._cut(result)
        for track, identity in result.resolved.items():
            self._decide((cam, int(track)), identity)
        for m in result.matches:
            key = (cam, m.track_id)
            self._start.setdefault(key, result.index)
            self._seen[key] = now
            if m.pending:
                if key in self._first:  # pending again (a cut): the stretch so far keeps what it has
                    del self._first[key]
                    self._start[key] = result.index
                    for stretch in self._switched.get(key, ()):
                        stretch[1] = result.index if stretch[1] is None else stretch[1]
                self._pending.add(key)
            else:
                self._decide(key, m.identity)
                if self.revise_s > 0 and m.identity:
                    self._switch(key, m.identity, now)
        self._held.append(result)
        self._release()

    def _cut(self, result: FrameResult) -> FrameResult:
        """Moves the held frames of each track cut in ``result`` to its new track (see the module docstring);
        returns ``result`` with the new track's ``pending`` event dated from the first frame moved."""
        cam = result.frame.camera_id
        first: dict[int, int] = {}
        for new, (old, since) in result.cuts.items():
            for k, held in enumerate(self._held):
                if held.frame.camera_id != cam or held.frame.timestamp <= since:
                    continue
                moved = _moved(held, int(old), int(new))
                if moved is not held:
                    self._held[k] = moved
                    first.setdefault(int(new), held.index)
            if int(new) in first:
                self._start[(cam, int(new))] = first[int(new)]
                self._pending.add((cam, int(new)))  # decided by a later match, or by ``resolved`` (a track's tail)
        if not first:
            return result
        events = tuple(dataclasses.replace(e, since=first[e.track]) if e.kind == "pending" and e.track in first
                       else e for e in result.events)
        return dataclasses.replace(result, events=events)

    def resolve(self, camera: str, resolved: dict[int, str]) -> None:
        """Decisions that arrive outside a frame (the stream ended while tracks were pending)."""
        for track, identity in resolved.items():
            self._decide((camera, int(track)), identity)
        self._release()

    def _switch(self, key: tuple[str, int], identity: str, now: float) -> None:
        """Notes a decided track's identity; a change within ``revise_s`` of its first decision is a switch."""
        first = self._first.setdefault(key, (now, identity))
        stretches = self._switched.setdefault(key, [])
        open_ = stretches[-1] if stretches and stretches[-1][1] is None else None
        latest = open_[3] if open_ else first[1]
        if identity == latest or now - first[0] > self.revise_s:
            return
        if open_ is None:
            stretches.append([self._start[key], None, {latest}, identity])
        else:
            open_[2] = (open_[2] | {latest}) - {identity}
            open_[3] = identity

    def _final(self, identity: str, key: tuple[str, int], index: int) -> str:
        """``identity`` of track ``key`` in frame ``index``, after the switches within ``revise_s``."""
        for start, end, earlier, latest in self._switched.get(key, ()):
            if start <= index and (end is None or index < end) and identity in earlier:
                return latest
        return identity

    def _decide(self, key: tuple[str, int], identity: str) -> None:
        if key in self._pending:
            self._pending.discard(key)
            self._decided[key] = identity

    def _waiting(self, result: FrameResult) -> bool:
        cam = result.frame.camera_id
        if any(m.pending and (cam, m.track_id) in self._pending for m in result.matches):
            return True
        now = self._now.get(cam, result.frame.timestamp)
        if now - result.frame.timestamp < self.hold_s:
            return True
        return any(now - self._first[k][0] < self.revise_s for k in ((cam, m.track_id) for m in result.matches)
                   if k in self._first)

    def _release(self, flush: bool = False) -> None:
        while self._held and (flush or len(self._held) > self.max_delay or not self._waiting(self._held[0])):
            self.sink(self._patch(self._held.popleft()))
        if not self._held:
            self._decided.clear()
            self._switched.clear()
            # Forget tracks long gone (a track's id is not reused within a run; this only bounds memory).
            gone = [k for k, t in self._seen.items() if self._now.get(k[0], t) - t > _FORGET_S]
            for k in gone:
                for d in (self._seen, self._first, self._start):
                    d.pop(k, None)

    def _patch(self, result: FrameResult) -> FrameResult:
        cam = result.frame.camera_id
        decided = {t: self._decided.get((cam, int(t)), "") for t in result.detections.track_ids}
        if not any(decided.values()) and not any((cam, int(t)) in self._switched for t in decided):
            return result
        ids = tuple(self._final(i or decided[int(t)], (cam, int(t)), result.index)
                    for i, t in zip(result.identities, result.detections.track_ids))
        events = tuple(dataclasses.replace(e, identity=self._final(self._decided.get((cam, e.track), ""),
                                                                   (cam, e.track), result.index))
                       if e.kind == "pending" else e for e in result.events)
        return dataclasses.replace(result, identities=ids, events=events)

    def _close(self) -> None:
        self._release(flush=True)
        close = getattr(self.sink, "close", None)
        if close is not None:
            close()


def _without_pixels(result: FrameResult) -> FrameResult:
    """``result`` with its frame's images replaced by one 1 x 1 stand-in (see ``strip_pixels``)."""
    f = result.frame
    if result.lit is None and f.rgb is not None:
        return result
    m = f.modalities[0]
    image = getattr(f, m.value)
    stand_in = np.zeros((1, 1) + image.shape[2:], image.dtype)
    images = {k: None for k in ("rgb", "depth", "ir", "thermal")}
    images[m.value] = stand_in
    frame = dataclasses.replace(f, intrinsics=None, stream_intrinsics={}, **images)
    return dataclasses.replace(result, frame=frame)


def _moved(result: FrameResult, old: int, new: int) -> FrameResult:
    """``result`` with track ``old`` renamed ``new`` and pending (its identity is the new track's, not yet known);
    ``result`` itself when the track is not in it."""
    ids = result.detections.track_ids
    if not (ids == old).any():
        return result
    d = result.detections
    dets = Detections(d.boxes, d.scores, np.where(ids == old, new, ids), d.modality, d.frame_index)
    identities = tuple("" if int(t) == old else i for i, t in zip(result.identities, ids))
    matches = tuple(dataclasses.replace(m, track_id=new, identity="", pending=True, is_new=False, evidence=0.0)
                    if m.track_id == old else m for m in result.matches)
    return dataclasses.replace(result, detections=dets, identities=identities, matches=matches)


__all__ = ["Relabel"]
