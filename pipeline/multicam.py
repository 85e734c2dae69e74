"""Several cameras into one gallery: merged frames, per-camera stages, embedding batched across cameras.

:class:`SiteSource` reads every camera in its own thread and hands the runner *rounds*: at most one frame per
camera, frames that belong to the same moment (within ``window_s``), oldest first. :class:`SitePipeline`
runs each camera's own detector, body meter and tracker (a :class:`~reidstream.pipeline.runner.Pipeline`
per camera), embeds the crops of the whole round with one network call per embedder, and lets the one
gallery decide each camera's tracks in time order, so a person who walks from a lit colour camera to a
dark depth/IR camera keeps one identity.

Track ids stay per camera in every output (each output names its camera); the gallery sees them offset
by ``camera index * TRACK_SPAN`` so tracks of different cameras never share an id there.
"""

from __future__ import annotations

import dataclasses
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.runner import TRACK_SPAN
from reidstream.pipeline.sources.base import AnnotatedFrame


_END = object()


@dataclass
class CameraFailure:
    """A camera whose source raised: the others go on."""

    camera_id: str
    error: BaseException


class _Reader:
    """One camera's reader thread: frames, relabelled with the camera id, into a bounded queue."""

    def __init__(self, camera_id: str, source: Iterable[AnnotatedFrame], maxsize: int) -> None:
        self.camera_id, self.source = camera_id, source
        self.queue: queue.Queue = queue.Queue(maxsize)
        self.head = None
        self.ended = False
        self.failure: CameraFailure | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"camera-{camera_id}", daemon=True)
        self.thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self.source:
                frame = item.frame
                if frame.camera_id != self.camera_id:
                    item = dataclasses.replace(item, frame=dataclasses.replace(frame, camera_id=self.camera_id))
                if not self._put(item):
                    return
        except Exception as e:  # noqa: BLE001 - one failing camera must not stop the others
            self._put(CameraFailure(self.camera_id, e))
            return
        self._put(_END)

    def stop(self) -> None:
        self._stop.set()


class SiteSource:
    """Frames of several cameras merged in time order, one reader thread per camera.

    Args:
        sources: Camera id -> source (any :class:`~reidstream.pipeline.sources.base.Source`; a live camera
            should be a buffered one, which drops by its own policy rather than stall its reader).
        live: Whether the cameras are live: a round then waits at most ``max_wait_s`` for a camera that has
            no frame yet. Replays (False) wait for every camera, so the order is the same on every run.
        window_s: Frames whose timestamps lie within this of the round's oldest go into the same round.
        max_wait_s: See ``live``.
        queue_frames: Frames each reader may hold ahead of processing.
    """

    def __init__(self, sources: dict[str, Iterable[AnnotatedFrame]], *, live: bool = False,
                 window_s: float = 0.02, max_wait_s: float = 0.1, queue_frames: int = 4) -> None:
        if not sources:
            raise ValueError("SiteSource: expected at least one camera")
        if window_s < 0 or max_wait_s < 0 or queue_frames < 1:
            raise ValueError(f"SiteSource: expected window_s >= 0, max_wait_s >= 0 and queue_frames >= 1, got "
                             f"{window_s}, {max_wait_s}, {queue_frames}")
        self.sources = dict(sources)
        self.live, self.window_s, self.max_wait_s = live, window_s, max_wait_s
        self.failures: list[CameraFailure] = []
        self._queue_frames = queue_frames
        self._readers: list[_Reader] | None = None

    @property
    def camera_ids(self) -> list[str]:
        return list(self.sources)

    def _fill(self, r: _Reader, wait: float | None) -> None:
        """Takes the reader's next item into ``head`` (waiting up to ``wait`` s; None: until there is one)."""
        if r.head is not None or r.ended:
            return
        try:
            item = r.queue.get(timeout=wait) if wait is not None else r.queue.get()
        except queue.Empty:
            return
        if item is _END:
            r.ended = True
        elif isinstance(item, CameraFailure):
            r.ended = True
            self.failures.append(item)
            print(f"reid-stream: camera {item.camera_id} failed: {type(item.error).__name__}: {item.error}; "
                  f"the other cameras go on", file=sys.stderr, flush=True)
        else:
            r.head = item

    def __iter__(self) -> Iterator[list[AnnotatedFrame]]:
        self._readers = [_Reader(cid, src, self._queue_frames) for cid, src in self.sources.items()]
        readers = self._readers
        while True:
            deadline = time.monotonic() + self.max_wait_s
            for r in readers:
                if self.live:
                    self._fill(r, max(0.0, deadline - time.monotonic()))
                else:
                    self._fill(r, None)
            heads = [r for r in readers if r.head is not None]
            if not heads:
                if all(r.ended for r in readers):
                    return
                continue
            t0 = min(r.head.frame.timestamp for r in heads)
            chosen = [r for r in heads if r.head.frame.timestamp <= t0 + self.window_s]
            chosen.sort(key=lambda r: r.head.frame.timestamp)
            out = []
            for r in chosen:
                out.append(r.head)
                r.head = None
            yield out

    def counts(self) -> dict:
        """Frames read and dropped (by reason) over every camera whose source counts them; per camera in
        ``cameras``."""
        per = {cid: (src.counts() if callable(getattr(src, "counts", None)) else {"read": None, "dropped": {}})
               for cid, src in self.sources.items()}
        read = None if any(c["read"] is None for c in per.values()) else sum(c["read"] for c in per.values())
        dropped: dict[str, int] = {}
        for c in per.values():
            for k, v in c["dropped"].items():
                dropped[k] = dropped.get(k, 0) + v
        return {"read": read, "dropped": dropped, "cameras": per}

    def close(self) -> None:
        for r in self._readers or []:
            r.stop()
        for src in self.sources.values():
            close = getattr(src, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as e:  # noqa: BLE001 - closing the others matters more
                    print(f"reid-stream: closing a camera failed: {e}", file=sys.stderr)


@dataclass
class SitePipeline:
    """Per-camera pipelines sharing one embedding stage and one gallery (see the module docstring).

    Args:
        pipelines: Camera id -> that camera's :class:`~reidstream.pipeline.runner.Pipeline` (its own
            detector, body meter and tracker; ``embed`` and ``gallery`` the shared ones). Their
            ``track_base`` is set here from their order.
    """

    pipelines: dict[str, object]
    _last_time: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not self.pipelines:
            raise ValueError("SitePipeline: expected at least one camera")
        shared = {id(p.gallery) for p in self.pipelines.values()}, {id(p.embed) for p in self.pipelines.values()}
        if len(shared[0]) != 1 or len(shared[1]) != 1:
            raise ValueError("SitePipeline: every camera's pipeline must share one gallery and one embedding stage")
        for k, p in enumerate(self.pipelines.values()):
            p.track_base = k * TRACK_SPAN

    @property
    def gallery(self):
        return next(iter(self.pipelines.values())).gallery

    @property
    def embed(self):
        return next(iter(self.pipelines.values())).embed

    def process(self, frames: list[AnnotatedFrame]) -> list[FrameResult]:
        """One round: every camera's frame detected and tracked, all crops embedded together (one call per
        network), then each frame's tracks decided by the gallery, oldest frame first."""
        for item in frames:
            if item.frame.camera_id not in self.pipelines:
                raise ValueError(f"frame {item.frame.index} comes from camera {item.frame.camera_id!r}, which is "
                                 f"not one of this site's cameras ({', '.join(self.pipelines)})")
        prepared = [self.pipelines[item.frame.camera_id].prepare(item) for item in frames]
        t0 = time.perf_counter()
        observations = self.embed.embed_many([p.crops for p in prepared])
        share = (time.perf_counter() - t0) / max(1, len(prepared))
        out = []
        cams = list(self.pipelines)
        for item, prep, obs in zip(frames, prepared, observations):
            cid = item.frame.camera_id
            out.append(self.pipelines[cid].conclude(prep, obs, embed_s=share))
            self._last_time = max(self._last_time or item.frame.timestamp, item.frame.timestamp)
            for gid, identity in (getattr(self.gallery, "last_resolved", {}) or {}).items():
                k, local = divmod(int(gid), TRACK_SPAN)  # other cameras' tracks decided after they left
                if 0 <= k < len(cams) and cams[k] != cid:
                    self.pipelines[cams[k]].resolved_elsewhere[local] = identity
        return out

    def finish(self) -> list[tuple[str, dict[int, str]]]:
        """Ends the site's streams: the gallery decides every pending track. Returns ``(camera id, local track
        id -> identity)`` per camera."""
        if self._last_time is None:
            return []
        resolved = self.gallery.finish(self._last_time)
        cams = list(self.pipelines)
        out: dict[str, dict[int, str]] = {}
        for gid, identity in resolved.items():
            k, local = divmod(int(gid), TRACK_SPAN)
            if 0 <= k < len(cams):
                out.setdefault(cams[k], {})[self.pipelines[cams[k]].result_id(local)] = identity
        return list(out.items())


__all__ = ["CameraFailure", "SitePipeline", "SiteSource"]
