"""An annotated video of the run: the mosaic of :func:`~reidstream.pipeline.sinks.draw.render_mosaic` per frame."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.sinks.draw import DEFAULT_TILES, parse_tiles, render_mosaic
from reidstream.pipeline.sinks.fanout import SinkBase
from reidstream.pipeline.types import Modality

CODECS = {".mp4": "mp4v", ".avi": "MJPG"}


class ThroughputMeter:
    """Frames per second between successive calls, smoothed (exponential moving average)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter, smoothing: float = 0.9) -> None:
        self.clock, self.smoothing = clock, smoothing
        self._last: float | None = None
        self.fps: float | None = None

    def tick(self) -> float | None:
        """Records one frame; returns the smoothed FPS (None until two frames were seen)."""
        now = self.clock()
        if self._last is not None and now > self._last:
            inst = 1.0 / (now - self._last)
            self.fps = inst if self.fps is None else self.smoothing * self.fps + (1 - self.smoothing) * inst
        self._last = now
        return self.fps


class AnnotatedVideoSink(SinkBase):
    """Writes each result as one video frame: modality tiles, identity boxes, FPS and latency text.

    The codec follows the suffix: ``.mp4`` -> ``mp4v``, ``.avi`` -> ``MJPG``. MJPG ``.avi`` is the
    crash-tolerant choice (frames are independent and the file stays readable if the run dies);
    an ``.mp4`` is only complete once :meth:`close` has run. The video size is fixed by the first
    frame's mosaic (padded to even width and height); later mosaics of another size are scaled to it.

    Args:
        path: The video file; parent directories are created.
        fps: Frame rate stored in the file (playback speed), not the measured throughput.
        tiles: Modalities shown left to right (``"rgb"``, ``"depth"``, ``"ir"``, ``"thermal"``).
        privacy: Never draw colour pixels: the rgb tile is a grey placeholder.
        overwrite: Replace an existing file.
        name: Sink name in reports.
        clock: Time source of the FPS overlay.

    Raises:
        ValueError: unknown suffix, tile or a non-positive ``fps``.
        FileExistsError: the file exists (without ``overwrite``).
        RuntimeError: at the first frame, when OpenCV cannot open a writer (names path and codec).
    """

    name = "video"
    needs_images = True

    def __init__(self, path: str | os.PathLike, *, fps: float = 15, tiles: Iterable[Modality | str] = DEFAULT_TILES,
                 privacy: bool = False, overwrite: bool = False, name: str | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.path = Path(path)
        self.codec = CODECS.get(self.path.suffix.lower())
        if self.codec is None:
            raise ValueError(f"AnnotatedVideoSink: {self.path}: expected a suffix in {list(CODECS)} "
                             f"(mp4v .mp4 or MJPG .avi), got {self.path.suffix!r}")
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
            raise ValueError(f"AnnotatedVideoSink: expected fps > 0, got {fps!r}")
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"AnnotatedVideoSink: {self.path}: exists; pass overwrite=True to replace it")
        self.fps = float(fps)
        self.tiles = parse_tiles(tiles, "AnnotatedVideoSink")
        self.privacy = bool(privacy)
        self.name = name or type(self).name
        self.meter = ThroughputMeter(clock)
        self.size: tuple[int, int] | None = None
        self.frames_written = 0
        self._writer: cv2.VideoWriter | None = None

    def _open(self, w: int, h: int) -> cv2.VideoWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()
        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*self.codec), self.fps, (w, h), True)
        if not writer.isOpened():
            writer.release()
            raise RuntimeError(f"AnnotatedVideoSink: {self.path}: OpenCV could not open a video writer with codec "
                               f"{self.codec!r} ({w}x{h} at {self.fps:g} FPS); check the directory is writable and "
                               f"that this OpenCV build has video I/O (FFmpeg)")
        return writer

    def _write(self, result: FrameResult) -> None:
        fps = self.meter.tick()
        img = render_mosaic(result, self.tiles, self.privacy, fps)
        if self.size is None:
            h, w = img.shape[:2]
            self.size = (w + w % 2, h + h % 2)
            self._writer = self._open(*self.size)
        w, h = self.size
        dh, dw = h - img.shape[0], w - img.shape[1]
        if 0 <= dh <= 1 and 0 <= dw <= 1:  # odd sizes padded to even ones (codecs want even sizes)
            img = np.pad(img, ((0, dh), (0, dw), (0, 0)))
        else:
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        self._writer.write(np.ascontiguousarray(img))
        self.frames_written += 1

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


__all__ = ["AnnotatedVideoSink", "CODECS", "ThroughputMeter"]
