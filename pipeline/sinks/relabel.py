"""Relabelling: file sinks receive a pending track's frames only once its identity is decided.

The gallery decides a track's identity after it has collected evidence (about a second). The live view
shows those frames as "pending" at once; the logs (MOT tracks, events, frames for scoring) should carry
the identity the track was finally given. :class:`Relabel` holds results back while any of their tracks
is pending, and hands them on, in order, with the decided identity filled in (in ``identities`` and in
the track's ``pending`` event) as soon as the decision is known: from a later frame's match of that
track, or from ``FrameResult.resolved`` for a track the gallery decided after it left the view.
"""

from __future__ import annotations

import dataclasses
from collections import deque

from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.sinks.fanout import Sink, SinkBase


class Relabel(SinkBase):
    """Delays results with pending tracks until those tracks are decided (see the module docstring).

    Args:
        sink: Where the relabelled results go (e.g. a :class:`~reidstream.pipeline.sinks.fanout.FanOut`).
        max_delay: Results held at most this many frames; older ones go on as they are (identity ``""``).
    """

    name = "relabel"

    def __init__(self, sink: Sink, max_delay: int = 600) -> None:
        if max_delay < 0:
            raise ValueError(f"Relabel: expected max_delay >= 0, got {max_delay}")
        self.sink, self.max_delay = sink, int(max_delay)
        self._held: deque[FrameResult] = deque()
        self._pending: set[tuple[str, int]] = set()
        self._decided: dict[tuple[str, int], str] = {}

    def _write(self, result: FrameResult) -> None:
        cam = result.frame.camera_id
        for track, identity in result.resolved.items():
            self._decide((cam, int(track)), identity)
        for m in result.matches:
            if m.pending:
                self._pending.add((cam, m.track_id))
            else:
                self._decide((cam, m.track_id), m.identity)
        self._held.append(result)
        self._release()

    def resolve(self, camera: str, resolved: dict[int, str]) -> None:
        """Decisions that arrive outside a frame (the stream ended while tracks were pending)."""
        for track, identity in resolved.items():
            self._decide((camera, int(track)), identity)
        self._release()

    def _decide(self, key: tuple[str, int], identity: str) -> None:
        if key in self._pending:
            self._pending.discard(key)
            self._decided[key] = identity

    def _waiting(self, result: FrameResult) -> bool:
        cam = result.frame.camera_id
        return any(m.pending and (cam, m.track_id) in self._pending for m in result.matches)

    def _release(self, flush: bool = False) -> None:
        while self._held and (flush or len(self._held) > self.max_delay or not self._waiting(self._held[0])):
            self.sink(self._patch(self._held.popleft()))
        if not self._held:
            self._decided.clear()

    def _patch(self, result: FrameResult) -> FrameResult:
        cam = result.frame.camera_id
        decided = {t: self._decided.get((cam, int(t)), "") for t in result.detections.track_ids}
        if not any(decided.values()):
            return result
        ids = tuple(i or decided[int(t)] for i, t in zip(result.identities, result.detections.track_ids))
        events = tuple(dataclasses.replace(e, identity=self._decided.get((cam, e.track), ""))
                       if e.kind == "pending" else e for e in result.events)
        return dataclasses.replace(result, identities=ids, events=events)

    def _close(self) -> None:
        self._release(flush=True)
        close = getattr(self.sink, "close", None)
        if close is not None:
            close()


__all__ = ["Relabel"]
