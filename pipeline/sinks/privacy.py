"""Privacy mode: sinks that never see or store colour pixels.

Rule for stripping colour (:func:`strip_colour`): the frame is rebuilt without its ``rgb`` image
(detections, identities, events and ground truth are kept; boxes stay in the colour pixel grid,
which aligned depth/IR/thermal share). A frame that carries *only* colour has nothing left to show:

* sinks that draw or store images (``needs_images = True``: video, window, recordings; also any sink
  that does not declare ``needs_images``) are skipped for that frame, counted in ``frames_skipped``;
* other sinks (event log, MOT files, summary) still get the result, with a placeholder frame whose
  only stream is an all-zero ``uint16`` depth image of the colour size: by the pipeline's
  conventions 0 means "no depth", so the placeholder truthfully carries no measurement.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from reidstream.pipeline.recording import RecordingWriter, check_target
from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.sinks.fanout import Sink, SinkBase
from reidstream.pipeline.sources.base import AnnotatedFrame
from reidstream.pipeline.types import Alignment, DepthUnit, Frame, Intrinsics, Modality

log = logging.getLogger(__name__)


def strip_colour(frame: Frame) -> Frame | None:
    """The frame without its colour image; None when colour is all it carries.

    The colour intrinsics are kept for aligned streams (same pixel grid); for unaligned streams the
    intrinsics become those of the first remaining stream (from ``stream_intrinsics``, or None).
    """
    if frame.rgb is None:
        return frame
    rest = [m for m in frame.modalities if m is not Modality.RGB]
    if not rest:
        return None
    streams = {m: i for m, i in frame.stream_intrinsics.items() if m is not Modality.RGB}
    intr = frame.intrinsics if frame.alignment is Alignment.ALIGNED_TO_COLOR else streams.get(rest[0])
    return dataclasses.replace(frame, rgb=None, intrinsics=intr, stream_intrinsics=streams)


def blank_frame(frame: Frame) -> Frame:
    """A colourless stand-in for a colour-only frame: all-zero ("no depth") millimetre depth of its size."""
    w, h = frame.size
    return Frame(depth=np.zeros((h, w), np.uint16), intrinsics=frame.intrinsics, timestamp=frame.timestamp,
                 index=frame.index, camera_id=frame.camera_id, depth_unit=DepthUnit.MILLIMETRE)


class PrivacyFilter(SinkBase):
    """Wraps a sink so that it only ever receives results whose frame has no colour image.

    See the module docstring for colour-only frames. The result is copied (``dataclasses.replace``);
    the caller's result is not changed.

    Args:
        sink: The wrapped sink; closed with the filter.
        name: Sink name in reports (default ``"privacy:<wrapped name>"``).

    Attributes:
        frames_skipped: Colour-only frames not handed to an image sink.
    """

    def __init__(self, sink: Sink, *, name: str | None = None) -> None:
        if not callable(sink) or not callable(getattr(sink, "close", None)):
            raise TypeError(f"PrivacyFilter: expected a sink with __call__ and close(), got {type(sink).__name__}")
        self.sink = sink
        self.name = name or f"privacy:{getattr(sink, 'name', type(sink).__name__)}"
        self.needs_images = bool(getattr(sink, "needs_images", True))
        self.frames_skipped = 0

    @property
    def stop_requested(self) -> bool:
        return bool(getattr(self.sink, "stop_requested", False))

    def _write(self, result: FrameResult) -> None:
        frame = strip_colour(result.frame)
        if frame is None:
            if self.needs_images:
                self.frames_skipped += 1
                return
            frame = blank_frame(result.frame)
        self.sink(result if frame is result.frame else dataclasses.replace(result, frame=frame))

    def _close(self) -> None:
        self.sink.close()


class DepthRecordingSink(SinkBase):
    """Records the frames' non-colour streams and ground truth as a reid-stream recording.

    Colour is stripped with :func:`strip_colour` (the recording has no ``rgb/`` folder); colour-only
    frames are skipped (``frames_skipped``). The recording is created at the first frame with a
    non-colour stream, whose modalities, sizes and dtypes every later frame must match (else the
    :class:`RecordingWriter` raises ``ValueError`` naming the frame). Each frame is complete on disk
    once written, so a crash loses at most the frame being written.

    Args:
        path: Recording directory (must not exist, or be empty).
        intrinsics: Intrinsics to store when the frames carry none.
        fps: Nominal frame rate stored in the metadata.
        overwrite: Replace an existing recording (deleted at the first frame).
        fsync_every: fsync the index every N frames (0: only at close).
        name: Sink name in reports.

    Raises:
        FileExistsError: ``path`` holds a recording (without ``overwrite``) or other files.
    """

    name = "depth_recording"
    needs_images = True

    def __init__(self, path: str | os.PathLike, *, intrinsics: Intrinsics | None = None, fps: float | None = None,
                 overwrite: bool = False, fsync_every: int = 0, name: str | None = None) -> None:
        self.path = Path(path)
        if not overwrite:
            check_target(self.path, overwrite=False)
        self.intrinsics, self.fps, self.overwrite, self.fsync_every = intrinsics, fps, overwrite, fsync_every
        self.name = name or type(self).name
        self.writer: RecordingWriter | None = None
        self.frames_skipped = 0

    def _open(self, frame: Frame) -> RecordingWriter:
        intr = self.intrinsics or frame.intrinsics
        if intr is None:
            raise ValueError(f"DepthRecordingSink: {self.path}: frame {frame.index} has no intrinsics; "
                             f"pass intrinsics=")
        return RecordingWriter(self.path, camera_id=frame.camera_id, intrinsics=intr, modalities=frame.modalities,
                               alignment=frame.alignment, stream_intrinsics=frame.stream_intrinsics, fps=self.fps,
                               fsync_every=self.fsync_every, overwrite=self.overwrite,
                               source="reid-stream DepthRecordingSink (colour stripped)")

    def _write(self, result: FrameResult) -> None:
        frame = strip_colour(result.frame)
        if frame is None:
            if self.frames_skipped == 0:
                log.warning("%s: frame %d carries only colour; nothing to record (skipping such frames)",
                            self.name, result.index)
            self.frames_skipped += 1
            return
        if self.writer is None:
            self.writer = self._open(frame)
        self.writer.write(AnnotatedFrame(frame, tuple(result.annotations), result.has_ground_truth))

    @property
    def frames_written(self) -> int:
        return 0 if self.writer is None else self.writer.frames_written

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()


__all__ = ["DepthRecordingSink", "PrivacyFilter", "blank_frame", "strip_colour"]
