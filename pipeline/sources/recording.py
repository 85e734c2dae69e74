"""Replays a recording written by :class:`reidstream.pipeline.recording.RecordingWriter`.

A recording cut off mid-write replays every complete frame: an unterminated
or unparsable last index line is dropped with a :class:`RecordingWarning`.
A frame whose image file is missing, empty, truncated or undecodable (anywhere
in the recording) is skipped when the replay reaches it: it is reported (by
default as a :class:`RecordingWarning` naming the file), counted in
``RecordingSource.skipped``, and the replay goes on with the next frame.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import numpy as np

from reidstream.pipeline.recording import INDEX_FILE, RecordingMeta, decode_image, read_meta
from reidstream.pipeline.sources.base import AnnotatedFrame, SourceError
from reidstream.pipeline.types import DepthUnit, Frame, Modality, PersonAnnotation


class RecordingWarning(UserWarning):
    """Part of a recording was dropped: cut off mid-write, or a frame's image file is missing or corrupt."""


@dataclass(frozen=True)
class SkippedFrame:
    """A frame of a recording that could not be replayed.

    Attributes:
        index: The frame's index in the recording.
        modality: The stream whose image is missing or corrupt.
        file: That image file, relative to the recording directory (as in ``frames.jsonl``).
        reason: What is wrong with it (``missing or empty``, ``truncated or undecodable``).
    """

    index: int
    modality: Modality
    file: str
    reason: str

    def message(self, recording: Path) -> str:
        """The report of the skipped frame, naming the recording, the frame and the file."""
        return f"{recording}: frame {self.index}: {self.modality.value} file {self.file} is {self.reason}; " \
               f"frame skipped"


@dataclass(frozen=True)
class _Entry:
    index: int
    timestamp: float
    files: dict[Modality, str]
    annotations: tuple[PersonAnnotation, ...]
    has_ground_truth: bool


class RecordingSource:
    """A :class:`~reidstream.pipeline.sources.base.Source` replaying a recording directory.

    Args:
        path: The recording directory.
        realtime: Pace playback at the recorded timestamps (default: as fast
            as possible, never dropping a frame). A frame whose time has passed
            by more than one frame period when the replay reaches it (the reader
            fell behind: slow decoding, or a consumer that blocks it) is passed
            over without decoding and counted in ``late``.
        loop: Start again after the last frame; indices and timestamps keep
            increasing across passes.
        start: Skip this many frames at the start of each pass.
        max_frames: Stop after yielding this many frames (None: no limit).
        on_skip: Called with each frame skipped because an image file is missing or corrupt, when the
            replay reaches it (None: a :class:`RecordingWarning` naming the file).

    Attributes:
        skipped: The frames skipped so far (:class:`SkippedFrame`), in replay order.
        late: Frames passed over so far by real-time pacing (``realtime=True``), for being late.

    Raises:
        SourceError: naming the file (and line), if ``recording.json`` is
            missing, malformed or of an unknown version, or an index line
            other than the last is corrupted.
    """

    def __init__(self, path: str | os.PathLike, *, realtime: bool = False, loop: bool = False, start: int = 0,
                 max_frames: int | None = None, on_skip: Callable[[SkippedFrame], None] | None = None) -> None:
        if start < 0 or (max_frames is not None and max_frames < 0):
            raise ValueError(f"RecordingSource: expected start >= 0 and max_frames >= 0 or None, "
                             f"got {start!r}, {max_frames!r}")
        self.path = Path(path)
        self.meta: RecordingMeta = read_meta(self.path)
        self.camera_id = self.meta.camera_id
        self.modalities = self.meta.modalities
        self.realtime, self.loop, self.start, self.max_frames = realtime, loop, start, max_frames
        self.on_skip = on_skip
        self.skipped: list[SkippedFrame] = []
        self.late = 0
        self._missing: list[SkippedFrame] = []  # frames with a missing file, reported when the replay reaches them
        self._entries = self._complete(self._read_index())
        self._closed = False

    @property
    def frame_count(self) -> int:
        """Number of complete frames in the recording (before ``start``/``max_frames``/``loop``)."""
        return len(self._entries)

    def __len__(self) -> int:
        """Frames one iteration yields; ``TypeError`` for an endless looping source."""
        per_pass = max(0, len(self._entries) - self.start)
        if self.loop and per_pass and self.max_frames is None:
            raise TypeError(f"RecordingSource({self.path}) loops forever and has no length")
        if self.loop and per_pass:
            return self.max_frames
        return per_pass if self.max_frames is None else min(per_pass, self.max_frames)

    def _warn(self, msg: str) -> None:
        warnings.warn(f"{msg}; replaying the complete frames before it", RecordingWarning, stacklevel=3)

    def _read_index(self) -> list[_Entry]:
        f = self.path / INDEX_FILE
        try:
            data = f.read_bytes()
        except FileNotFoundError:
            self._warn(f"{f}: missing (recording cut off before its first frame)")
            return []
        except OSError as e:
            raise SourceError(f"{f}: unreadable ({e})") from None
        lines = data.split(b"\n")
        tail = lines.pop()  # bytes after the last newline: empty unless the last write was cut off
        if tail.strip(b"\x00 \t\r"):
            self._warn(f"{f}: line {len(lines) + 1} is incomplete (cut off mid-write), ignored")
        entries: list[_Entry] = []
        for n, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                d = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                if n == len(lines) and not tail:
                    self._warn(f"{f}: last line {n} does not parse (cut off mid-write), ignored")
                    break
                raise SourceError(f"{f}: line {n} is corrupted ({e})") from None
            entries.append(self._entry(d, f"{f}: line {n}", entries[-1].index if entries else None))
        return entries

    def _entry(self, d: object, where: str, last: int | None) -> _Entry:
        try:
            index, ts, files = d["index"], d["timestamp"], d["files"]
            bad_type = not isinstance(index, int) or isinstance(index, bool)
            if bad_type or index < 0 or (last is not None and index <= last):
                raise ValueError(f"index {index!r} is not an integer above the previous {last}")
            if not isinstance(ts, (int, float)) or not math.isfinite(ts):
                raise ValueError(f"timestamp {ts!r} is not a finite number")
            files = {Modality(k): str(v) for k, v in files.items()}
            if set(files) != set(self.modalities):
                raise ValueError(f"files for {sorted(m.value for m in files)}, expected "
                                 f"{[m.value for m in self.modalities]}")
            for v in files.values():
                p = PurePosixPath(v)
                if p.is_absolute() or ".." in p.parts or "\\" in v:
                    raise ValueError(f"file {v!r} is not a path inside the recording")
            annotations = tuple(PersonAnnotation.from_dict(a) for a in d.get("annotations", ()))
            return _Entry(index, float(ts), files, annotations, bool(d.get("has_ground_truth", False)))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise SourceError(f"{where} is not a valid frame record ({type(e).__name__}: {e})") from None

    def _complete(self, entries: list[_Entry]) -> list[_Entry]:
        """The frames whose image files are all there; the others go to ``_missing``."""
        complete = []
        for e in entries:
            for m, name in e.files.items():
                p = self.path / name
                if not p.is_file() or p.stat().st_size == 0:
                    self._missing.append(SkippedFrame(e.index, m, name, "missing or empty"))
                    break
            else:
                complete.append(e)
        return complete

    def _skip(self, skipped: SkippedFrame) -> None:
        """Records and reports a skipped frame."""
        self.skipped.append(skipped)
        if self.on_skip is not None:
            self.on_skip(skipped)
        else:
            warnings.warn(skipped.message(self.path), RecordingWarning, stacklevel=4)

    def _report_missing(self, before: int | None) -> None:
        """Skips (reports) the frames with a missing file whose index is below ``before`` (None: all)."""
        while self._missing and (before is None or self._missing[0].index < before):
            self._skip(self._missing.pop(0))

    def _load(self, pos: int) -> dict[Modality, np.ndarray] | None:
        e, meta = self._entries[pos], self.meta
        images = {}
        for m, name in e.files.items():
            reason = "truncated or undecodable"
            try:
                img = decode_image((self.path / name).read_bytes(), name)
            except FileNotFoundError:
                img, reason = None, "missing or empty"
            except OSError as err:
                img, reason = None, f"unreadable ({err.strerror or err})"
            if img is None:
                del self._entries[pos]
                self._skip(SkippedFrame(e.index, m, name, reason))
                return None
            want_size, want_dtype = meta.sizes.get(m), meta.dtype(m)
            ok_shape = img.ndim == (3 if m is Modality.RGB else 2) and (img.ndim == 2 or img.shape[2] == 3)
            if not ok_shape or (want_size and (img.shape[1], img.shape[0]) != tuple(want_size)) \
                    or (want_dtype is not None and img.dtype != want_dtype):
                raise SourceError(f"{self.path / name}: frame {e.index}: expected a {m.value} image of "
                                  f"{want_size} and dtype {np.dtype(want_dtype).name if want_dtype else '?'}, "
                                  f"got shape {img.shape} and dtype {img.dtype}")
            images[m] = img
        return images

    def __iter__(self) -> Iterator[AnnotatedFrame]:
        meta, yielded, passes = self.meta, 0, 0
        wall0 = ts0 = None
        while not self._closed and len(self._entries) > self.start:
            first, last = self._entries[self.start], self._entries[-1]
            n = len(self._entries) - self.start
            period = (last.timestamp - first.timestamp) / (n - 1) if n > 1 else 1.0 / (meta.fps or 30.0)
            index_shift = passes * (last.index - first.index + 1)
            ts_shift = passes * (last.timestamp - first.timestamp + period)
            if self.start:  # frames before the start are not replayed, whole or not
                self._missing = [s for s in self._missing if s.index > first.index]
            pos = self.start
            while pos < len(self._entries):
                if self._closed or (self.max_frames is not None and yielded >= self.max_frames):
                    return
                self._report_missing(self._entries[pos].index)
                ts = self._entries[pos].timestamp + ts_shift
                if self.realtime and wall0 is not None and time.monotonic() - (wall0 + ts - ts0) > period:
                    self.late += 1  # its time has passed: keep to the recorded pace
                    pos += 1
                    continue
                images = self._load(pos)
                if images is None:
                    continue  # skipped and removed: the next frame is now at ``pos``
                e = self._entries[pos]
                if self.realtime:
                    now = time.monotonic()
                    if wall0 is None:
                        wall0, ts0 = now, ts
                    time.sleep(max(0.0, wall0 + (ts - ts0) - now))
                frame = Frame(**{m.value: img for m, img in images.items()}, intrinsics=meta.intrinsics,
                              timestamp=ts, index=e.index + index_shift, camera_id=meta.camera_id,
                              depth_unit=DepthUnit.MILLIMETRE, alignment=meta.alignment,
                              stream_intrinsics=meta.stream_intrinsics)
                yield AnnotatedFrame(frame, e.annotations, e.has_ground_truth)
                yielded += 1
                pos += 1
            self._report_missing(None)  # frames with a missing file after the last complete one
            if not self.loop:
                return
            passes += 1
        if not self._closed:
            self._report_missing(None)

    def close(self) -> None:
        """Stops iteration; idempotent."""
        self._closed = True

    def __enter__(self) -> "RecordingSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
