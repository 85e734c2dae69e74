"""Live-camera plumbing: reconnect with back-off, a bounded reader-thread buffer, and the camera registry.

* :class:`ReconnectingSource` reopens a camera that disconnects or stalls.
* :class:`BufferedSource` reads in a thread so a slow consumer never stalls a
  live camera (dropping by policy), or, with ``policy="block"``, never drops
  (replay).
* :func:`open_camera` builds any source by kind name (:data:`CAMERAS`);
  hardware libraries are imported only when their kind is opened.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from reidstream.pipeline.sources.base import AnnotatedFrame, Source, SourceError
from reidstream.pipeline.types import Modality

EventCallback = Callable[[str, dict], None]
BUFFER_POLICIES = ("drop_oldest", "drop_newest", "block")


class ReconnectingSource:
    """Iterates a source and reopens it when it fails, with back-off.

    When opening or reading raises :class:`SourceError` (or, with ``live=True``,
    the inner iteration ends), the failure is reported as ``on_event("disconnected",
    {"name", "error", "phase": "open" | "read" | "end", "frames"})``; then for each
    attempt ``on_event("reconnecting", {"name", "attempt", "delay"})``, a wait of
    ``backoff[attempt - 1]`` (the last value repeats), a reopen, and after it
    ``on_event("reconnected", {"name", "attempt"})``. Frame indices are shifted so
    they keep increasing across reconnects (the first connection keeps its own,
    gaps inside one connection are kept);
    frames are otherwise passed through untouched, and nothing held by the caller
    is reset. Other exceptions propagate at once.

    Args:
        open_source: Opens the camera (called again on every reconnect).
        name: Names the source in events and errors.
        backoff: Seconds to wait before attempt 1, 2, ...
        max_retries: Failed attempts in a row before giving up (None: never give
            up); the count restarts once a reopened source yields a frame.
        on_event: Called with (event, info) from the iterating thread.
        sleep: The wait function (tests inject a recorder). A ``close()`` from
            another thread takes effect when the current wait returns.
        live: An inner iteration that ends is a disconnect, not the end of the stream.

    Raises:
        SourceError: once ``max_retries`` attempts failed, naming the source and the last error.
    """

    def __init__(self, open_source: Callable[[], Source], *, name: str,
                 backoff: Sequence[float] = (0.5, 1, 2, 4, 8), max_retries: int | None = None,
                 on_event: EventCallback | None = None, sleep: Callable[[float], Any] = time.sleep,
                 live: bool = False) -> None:
        if not backoff or any(b < 0 for b in backoff) or (max_retries is not None and max_retries < 0):
            raise ValueError(f"ReconnectingSource({name}): expected non-negative backoff values and max_retries, "
                             f"got {tuple(backoff)!r}, {max_retries!r}")
        self.open_source, self.name, self.backoff = open_source, name, tuple(float(b) for b in backoff)
        self.max_retries, self.on_event, self.sleep, self.live = max_retries, on_event, sleep, live
        self.camera_id = name
        self.modalities: tuple[Modality, ...] = ()
        self.reconnects = 0
        self._inner: Source | None = None
        self._closed = False

    def _emit(self, event: str, **info) -> None:
        if self.on_event is not None:
            self.on_event(event, {"name": self.name, **info})

    def _open(self) -> Source:
        src = self.open_source()
        self._inner = src
        self.camera_id, self.modalities = src.camera_id, tuple(src.modalities)
        if self._closed:  # closed while opening
            src.close()
        return src

    def __iter__(self) -> Iterator[AnnotatedFrame]:
        last_index, failures, attempt, frames = -1, 0, 0, 0
        while not self._closed:
            phase, error = "open", None
            try:
                src = self._open()
                if attempt:
                    self._emit("reconnected", attempt=attempt)
                phase, offset = "read", None
                for item in src:
                    if offset is None:  # the first connection keeps its indices
                        offset = 0 if last_index < 0 else last_index + 1 - item.frame.index
                        failures = attempt = 0
                    index = max(item.frame.index + offset, last_index + 1)
                    if index != item.frame.index:
                        item = dataclasses.replace(item, frame=dataclasses.replace(item.frame, index=index))
                    last_index, frames = index, frames + 1
                    yield item
                if self._closed or not self.live:
                    return
                phase, error = "end", SourceError(f"{self.name}: the stream ended")
            except SourceError as e:
                if self._closed:
                    return
                error = e
            finally:
                self._close_inner()
            self._emit("disconnected", error=str(error), phase=phase, frames=frames)
            failures += 1
            if self.max_retries is not None and failures > self.max_retries:
                raise SourceError(f"{self.name}: gave up after {failures - 1} reconnect attempts; "
                                  f"last error: {error}") from error
            attempt += 1
            delay = self.backoff[min(attempt, len(self.backoff)) - 1]
            self._emit("reconnecting", attempt=attempt, delay=delay)
            self.reconnects += 1
            self.sleep(delay)

    def _close_inner(self) -> None:
        src, self._inner = self._inner, None
        if src is not None:
            try:
                src.close()
            except Exception:  # noqa: BLE001 - a broken camera may fail to close; it is dropped anyway
                pass

    def close(self) -> None:
        """Stops iterating and closes the current inner source (idempotent)."""
        self._closed = True
        self._close_inner()

    def __enter__(self) -> "ReconnectingSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class BufferedSource:
    """Reads a source in a thread into a bounded queue.

    Policies when the queue is full: ``drop_oldest`` (the consumer always gets
    the newest frames), ``drop_newest`` (the new frame is discarded), ``block``
    (the reader waits: nothing is dropped; replay uses it). Dropped frames are
    counted in ``dropped`` and reported as ``on_event("dropped", {"name",
    "index", "dropped"})`` from the reader thread. An exception in the reader
    is re-raised in the consumer after the frames read before it. Every frame
    the source yields is counted in ``read``; frames still buffered (or read)
    when the buffer is closed are counted in ``discarded``; :meth:`counts` gives
    them all, so that ``read = delivered + dropped + discarded``.

    Args:
        source: The source to read (its thread starts at :meth:`start` or the first iteration).
        maxsize: Frames held at most.
        policy: ``"drop_oldest"``, ``"drop_newest"`` or ``"block"``.
        on_event: Optional callback for dropped frames.
    """

    def __init__(self, source: Source, *, maxsize: int = 4, policy: str = "drop_oldest",
                 on_event: EventCallback | None = None) -> None:
        if maxsize < 1 or policy not in BUFFER_POLICIES:
            raise ValueError(f"BufferedSource: expected maxsize >= 1 and policy in {BUFFER_POLICIES}, "
                             f"got {maxsize!r}, {policy!r}")
        self.source, self.maxsize, self.policy, self.on_event = source, maxsize, policy, on_event
        self.dropped = 0
        self.read = 0
        self.delivered = 0
        self.discarded = 0
        self._queue: deque[AnnotatedFrame] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._done = self._closed = False
        self._error: BaseException | None = None

    @property
    def camera_id(self) -> str:
        return self.source.camera_id

    @property
    def modalities(self) -> tuple[Modality, ...]:
        return tuple(self.source.modalities)

    def _put(self, item: AnnotatedFrame) -> None:
        lost = None
        with self._cond:
            self.read += 1
            while self.policy == "block" and len(self._queue) >= self.maxsize and not self._closed:
                self._cond.wait()
            if self._closed:
                self.discarded += 1
                return
            if len(self._queue) >= self.maxsize:
                lost = self._queue.popleft() if self.policy == "drop_oldest" else item
                self.dropped += 1
            if lost is not item:
                self._queue.append(item)
            self._cond.notify_all()
        if lost is not None and self.on_event is not None:
            self.on_event("dropped", {"name": self.camera_id, "index": lost.frame.index, "dropped": self.dropped})

    def _read(self) -> None:
        try:
            for item in self.source:
                if self._closed:
                    break
                self._put(item)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            self._error = e
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def start(self) -> None:
        """Starts the reader thread now (iterating starts it otherwise); idempotent."""
        with self._cond:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._read, name=f"read-{self.camera_id}", daemon=True)
                self._thread.start()

    def __iter__(self) -> Iterator[AnnotatedFrame]:
        self.start()
        while True:
            with self._cond:
                while not self._queue and not self._done and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                if not self._queue:
                    if self._error is not None:
                        error, self._error = self._error, None
                        raise error
                    return
                item = self._queue.popleft()
                self.delivered += 1
                self._cond.notify_all()
            yield item

    def close(self, timeout: float = 2.0) -> None:
        """Stops the reader: closes the source, wakes every waiter, joins the thread (up to ``timeout`` s)."""
        with self._cond:
            self._closed = True
            self.discarded += len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        self.source.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def counts(self) -> dict:
        """What became of the frames of the source so far.

        Returns:
            ``read`` (frames the source yielded, plus those a real-time replay passed over because they
            were late: the source's ``late``), ``delivered`` (handed to the consumer) and ``dropped``:
            reason -> frames, ``buffer_full`` (dropped by ``drop_oldest`` / ``drop_newest``), ``realtime``
            (passed over by real-time pacing) and ``at_stop`` (still buffered when the buffer was closed).
            ``read = delivered + sum(dropped.values())`` once the buffer is closed.
        """
        with self._cond:
            late = int(getattr(self.source, "late", 0) or 0)
            return {"read": self.read + late, "delivered": self.delivered,
                    "dropped": {"buffer_full": self.dropped, "realtime": late, "at_stop": self.discarded}}

    def __enter__(self) -> "BufferedSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- the camera registry -------------------------------------------------------------------------------------------

def _realsense(**options) -> Source:
    from reidstream.pipeline.sources.realsense import RealSenseSource
    return RealSenseSource(**options)


def _kinect(**options) -> Source:
    from reidstream.pipeline.sources.kinect import AzureKinectSource
    return AzureKinectSource(**options)


def _openni(**options) -> Source:
    from reidstream.pipeline.sources.kinect import OpenNISource
    return OpenNISource(**options)


def _opencv(modality: str, default_uri: Any = None) -> Callable[..., Source]:
    def factory(uri: Any = default_uri, **options) -> Source:
        from reidstream.pipeline.sources.opencv_camera import OpenCVSource
        if uri is None:
            raise ValueError(f"open_camera: a {modality} camera needs uri= (device index, /dev/videoN, URL or file)")
        return OpenCVSource(uri, options.pop("modality", modality), **options)
    return factory


def _sim(config: Any = None, **options) -> Source:
    """``config``: a ``SimConfig``, a mapping of overrides, a YAML path, or None (defaults)."""
    from reidstream.pipeline.config import config_from_mapping, load_config
    from reidstream.pipeline.sim.config import SimConfig
    from reidstream.pipeline.sources.sim import SimSource
    if config is None or isinstance(config, (str, Path)):
        cfg = load_config(SimConfig, config)
    elif isinstance(config, Mapping):
        cfg = config_from_mapping(SimConfig, config, "<open_camera sim>")
    else:
        cfg = config
    return SimSource.from_config(cfg, **options)


def _recording(path: Any, **options) -> Source:
    from reidstream.pipeline.sources.recording import RecordingSource
    return RecordingSource(path, **options)


CAMERAS: dict[str, Callable[..., Source]] = {
    "realsense": _realsense,
    "kinect": _kinect,
    "openni": _openni,
    "ir": _opencv("ir"),
    "thermal": _opencv("thermal"),
    "webcam": _opencv("rgb", default_uri=0),
    "video": _opencv("rgb"),
    "sim": _sim,
    "recording": _recording,
}


def open_camera(kind: str, **options) -> Source:
    """Opens a source of the given kind (a key of :data:`CAMERAS`) with its constructor's options.

    Examples: ``open_camera("realsense", serial="123", streams=("rgb", "depth"))``,
    ``open_camera("thermal", uri="/dev/video2", thermal_format="uint16")``,
    ``open_camera("sim", config="configs/sim/dark.yaml", max_frames=100)``,
    ``open_camera("recording", path="runs/rec1")``.

    Raises:
        ValueError: unknown kind. SourceError: the source cannot be opened.
    """
    try:
        factory = CAMERAS[kind]
    except KeyError:
        raise ValueError(f"open_camera: unknown camera kind {kind!r}; expected one of {sorted(CAMERAS)}") from None
    return factory(**options)


def open_from_config(cfg: Any) -> Source:
    """Opens the source a ``reid-stream`` :class:`~reidstream.pipeline.app.config.SourceConfig` describes.

    ``uri`` is the device index / path / URL / file (for ``realsense`` and
    ``kinect`` a recording to play back); ``realtime=None`` means real time for
    live cameras and the simulator, as fast as possible for files; ``streams``
    (``realsense``, ``kinect``, ``openni``) the streams to open, None: the
    source's default.
    """
    kind, uri, live_default = cfg.camera, cfg.uri, cfg.camera == "sim"
    common: dict[str, Any] = {"max_frames": cfg.max_frames}
    streams = getattr(cfg, "streams", None)
    if streams is not None:  # only realsense / kinect / openni (the config validates it)
        common["streams"] = tuple(streams)
    realtime = live_default if cfg.realtime is None else cfg.realtime
    if kind == "sim":
        return open_camera(kind, config=cfg.sim, realtime=realtime, **common)
    if kind == "recording":
        if not uri:
            raise ValueError("source.uri: the recording directory is required for camera 'recording'")
        return open_camera(kind, path=uri, realtime=realtime, **common)
    if kind == "realsense":
        where = {"playback": uri, "realtime": realtime} if uri else {"serial": cfg.serial}
        return open_camera(kind, width=cfg.width, height=cfg.height, fps=cfg.fps, **where, **common)
    if kind == "kinect":
        where = {"device_id": int(uri)} if uri and uri.isdigit() else {"playback": uri, "realtime": realtime}
        return open_camera(kind, **(where if uri else {}), **common)
    if kind == "openni":
        return open_camera(kind, device=uri if uri else 0, **common)
    options: dict[str, Any] = {"uri": uri} if uri else {}
    if kind == "video":
        options["realtime"] = realtime
    else:
        options.update(width=cfg.width, height=cfg.height, fps=cfg.fps)
    return open_camera(kind, **options, **common)
