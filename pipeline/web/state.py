"""What the browser view shows, shared between the pipeline, its sink thread and the HTTP threads.

:class:`WebState` holds, under one lock, only small things: per camera the latest annotated JPEG and its
statistics, per identity a thumbnail per modality, a ring of recent events, and a snapshot of the gallery
made by the pipeline thread. Each streaming client has its own bounded queue: a client that does not read
loses frames, nobody else does, and the pipeline never waits for it.

Actions (name, merge, forget, split) are queued by the HTTP threads (:meth:`WebState.submit`) and applied
by the pipeline thread between frames (:meth:`WebState.between_frames`, called by
:func:`~reidstream.pipeline.loop.run`), so the gallery is never changed while it matches. The same call
copies the gallery's latest decision explanations (:meth:`~reidstream.pipeline.gallery.store.Gallery.explanations`)
when they changed, as plain dicts the HTTP threads serve.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

CLIENT_QUEUE = 2
"""Frames a streaming client may have waiting; older ones are dropped for that client only."""
EVENT_RING = 5000
SNAPSHOT_EVERY_S = 0.5
ACTIONS = ("rename", "merge", "forget", "split")


@dataclass(frozen=True)
class Action:
    """One operator action, as queued by an HTTP thread.

    Attributes:
        kind: ``rename`` (``identity`` -> ``name``), ``merge`` (``other`` into ``identity``), ``forget`` or
            ``split`` (visit ``rows`` of ``identity`` become a new identity).
        identity: The identity acted on (the one kept by a merge).
        name: The new name (``rename``).
        other: The identity merged away (``merge``).
        rows: The visit rows split off (``split``).
    """

    kind: str
    identity: str
    name: str = ""
    other: str = ""
    rows: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ACTIONS:
            raise ValueError(f"action: expected one of {ACTIONS}, got {self.kind!r}")


@dataclass
class CameraView:
    """One camera's latest annotated frame and statistics."""

    jpeg: bytes = b""
    seq: int = 0
    frame: int = -1
    fps: float = 0.0
    latency_ms: dict = field(default_factory=dict)
    people: int = 0
    in_view: list = field(default_factory=list)
    read: int | None = None
    dropped: dict = field(default_factory=dict)
    processed: int = 0
    encoded: int = 0
    clients: list = field(default_factory=list)


class WebState:
    """The browser view's shared state (see the module docstring).

    Args:
        privacy: Colour is never kept (the sink also receives colourless frames).
        clock: Wall-clock source.
    """

    def __init__(self, *, privacy: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        self.privacy = privacy
        self.clock = clock
        self.lock = threading.Lock()
        self.cameras: dict[str, CameraView] = {}
        self.thumbs: dict[str, dict[str, bytes]] = {}
        self.thumb_time: dict[str, float] = {}
        self.seen_cameras: dict[str, set[str]] = {}
        self.forgotten: set[str] = set()
        self.events: collections.deque = collections.deque(maxlen=EVENT_RING)
        self.event_seq = 0
        self.gallery: list[dict] = []
        self.gallery_at = -1e9
        self.last_request = -1e9
        self._actions: queue.Queue = queue.Queue()
        self.closed = False
        self.evidence: dict[str, dict] = {}
        """Identity -> the explanation of its latest decision (a JSON-able dict)."""
        self.track_evidence: dict[int, dict] = {}
        """Live track id -> the explanation of its latest decision or re-check."""
        self._evidence_serial: int | None = None

    # ------------------------------------------------------------- frames
    def wanted(self) -> bool:
        """Whether anyone watches (a streaming client, or a request in the last 5 s): frames are drawn only then."""
        with self.lock:
            return any(c.clients for c in self.cameras.values()) or self.clock() - self.last_request < 5.0

    def publish(self, camera: str, jpeg: bytes) -> None:
        """The camera's newest annotated JPEG, handed to each client's queue (dropping that client's oldest)."""
        with self.lock:
            cam = self.cameras.setdefault(camera, CameraView())
            cam.jpeg, cam.seq, cam.encoded = jpeg, cam.seq + 1, cam.encoded + 1
            clients = list(cam.clients)
        for q in clients:
            try:
                q.put_nowait(jpeg)
            except queue.Full:
                try:
                    q.get_nowait()
                except queue.Empty:
                    pass
                try:
                    q.put_nowait(jpeg)
                except queue.Full:
                    pass

    def subscribe(self, camera: str) -> queue.Queue:
        """A bounded queue of the camera's next frames (starting with its latest); :meth:`unsubscribe` it."""
        q: queue.Queue = queue.Queue(CLIENT_QUEUE)
        with self.lock:
            cam = self.cameras.setdefault(camera, CameraView())
            cam.clients.append(q)
            if cam.jpeg:
                q.put_nowait(cam.jpeg)
        return q

    def unsubscribe(self, camera: str, q: queue.Queue) -> None:
        with self.lock:
            cam = self.cameras.get(camera)
            if cam is not None and q in cam.clients:
                cam.clients.remove(q)

    # ------------------------------------------------------------- events
    def add_events(self, items: list[dict]) -> None:
        with self.lock:
            for e in items:
                self.event_seq += 1
                self.events.append({"seq": self.event_seq, **e})

    def events_since(self, since: int = 0, identity: str | None = None, camera: str | None = None,
                     limit: int = 500) -> list[dict]:
        """Events after ``since`` (their ``seq``), optionally of one identity and / or camera, the newest ``limit``."""
        with self.lock:
            out = [e for e in self.events if e["seq"] > since and (not identity or e.get("identity") == identity)
                   and (not camera or e.get("camera") == camera)]
        return out[-limit:]

    # ---------------------------------------------------------- thumbnails
    def set_thumbs(self, identity: str, camera: str, thumbs: dict[str, bytes] | None) -> None:
        with self.lock:
            if identity in self.forgotten:
                return
            self.seen_cameras.setdefault(identity, set()).add(camera)
            if thumbs:
                self.thumbs.setdefault(identity, {}).update(thumbs)
                self.thumb_time[identity] = self.clock()

    def thumb(self, identity: str, modality: str) -> bytes | None:
        with self.lock:
            return self.thumbs.get(identity, {}).get(modality)

    # ------------------------------------------------------------- actions
    def submit(self, action: Action) -> Future:
        """Queues an action for the pipeline thread; the future gets its result (or exception)."""
        fut: Future = Future()
        if self.closed:
            fut.set_exception(RuntimeError("the run has ended; no more changes to its gallery"))
        else:
            self._actions.put((action, fut))
        return fut

    def between_frames(self, gallery) -> tuple[bool, bool]:
        """Applies the queued actions to ``gallery`` and refreshes the gallery snapshot (pipeline thread only).

        Returns:
            ``(changed, erase)`` for :func:`~reidstream.pipeline.loop.run`: whether the gallery changed, and
            whether an identity was forgotten (the gallery must then be saved and the journal emptied).
        """
        changed = erase = False
        while True:
            try:
                action, fut = self._actions.get_nowait()
            except queue.Empty:
                break
            try:
                fut.set_result(self._apply(gallery, action))
                changed, erase = True, erase or action.kind == "forget"
            except Exception as e:  # noqa: BLE001 - reported to the client that asked
                fut.set_exception(e)
        if changed or self.clock() - self.gallery_at >= SNAPSHOT_EVERY_S:
            self.snapshot(gallery)
        self.copy_evidence(gallery, force=changed)
        return changed, erase

    def copy_evidence(self, gallery, force: bool = False) -> None:
        """Copies the gallery's latest explanations when they changed (pipeline thread only; cheap otherwise:
        a gallery without :meth:`explanations` has none)."""
        serial = getattr(gallery, "explain_serial", None)
        if serial is None or (serial == self._evidence_serial and not force):
            return
        by_identity, by_track = gallery.explanations()
        ids = {name: e.to_dict() for name, e in by_identity.items()}
        tracks = {tid: e.to_dict() for tid, e in by_track.items()}
        with self.lock:
            self.evidence, self.track_evidence, self._evidence_serial = ids, tracks, serial

    def explanation(self, identity: str | None = None, track: int | None = None) -> dict | None:
        """The copied explanation of an identity's latest decision, or of a live track's (None: none)."""
        with self.lock:
            return self.evidence.get(identity) if identity is not None else self.track_evidence.get(track)

    def _apply(self, gallery, a: Action) -> dict:
        if a.kind == "rename":
            new = gallery.rename(a.identity, a.name)
            with self.lock:
                self.forgotten.discard(new)
                for d in (self.thumbs, self.thumb_time, self.seen_cameras):
                    if a.identity in d:
                        d[new] = d.pop(a.identity)
            what = {"kind": "named", "identity": new, "previous": a.identity}
        elif a.kind == "merge":
            gallery.merge(a.identity, a.other)
            with self.lock:
                self.seen_cameras.setdefault(a.identity, set()).update(self.seen_cameras.pop(a.other, set()))
                self.thumbs.pop(a.other, None)
                self.thumb_time.pop(a.other, None)
            what = {"kind": "merged", "identity": a.identity, "previous": a.other}
        elif a.kind == "split":
            new = gallery.split(a.identity, list(a.rows))
            what = {"kind": "split", "identity": new, "previous": a.identity, "rows": list(a.rows)}
        else:
            gallery.forget(a.identity)
            with self.lock:
                self.forgotten.add(a.identity)
                self.thumbs.pop(a.identity, None)
                self.thumb_time.pop(a.identity, None)
            what = {"kind": "forgotten", "identity": a.identity}
        self.add_events([{**what, "camera": "", "frame": -1, "time": None}])
        return what

    def close(self) -> None:
        """The run ended: queued actions fail, later ones are refused."""
        self.closed = True
        while True:
            try:
                _, fut = self._actions.get_nowait()
            except queue.Empty:
                return
            fut.set_exception(RuntimeError("the run ended before the action could be applied"))

    def snapshot(self, gallery) -> None:
        """Copies what the page lists of each identity from ``gallery`` (pipeline thread only)."""
        v = gallery.visits
        rows = {}
        for name in gallery.identities():
            slot = gallery._slot[name]
            r = v.rows_of(slot)
            rows[name] = {"identity": name, "pinned": bool(gallery.pinned[slot]), "visits": int(len(r)),
                          "first_seen": float(v.start[r].min()) if len(r) else None,
                          "last_seen": float(gallery.last_seen[slot]),
                          "camera": gallery._slot_camera.get(slot),
                          "visit_list": [{"row": int(i), "start": float(v.start[i]), "end": float(v.end[i]),
                                          "lit": bool(v.lit[i])} for i in sorted(r.tolist(), key=lambda i: v.start[i])]}
        with self.lock:
            for name in [k for k in self.thumbs if k not in rows]:
                if self.clock() - self.thumb_time.get(name, 0.0) > 5.0:  # renamed / merged / expired
                    del self.thumbs[name]
            for name, row in rows.items():
                cams = set(self.seen_cameras.get(name, set()))
                if row["camera"]:
                    cams.add(row["camera"])
                row["cameras"] = sorted(cams)
                row["thumbs"] = sorted(self.thumbs.get(name, {}))
            self.gallery = list(rows.values())
            self.gallery_at = self.clock()


__all__ = ["Action", "CameraView", "WebState"]
