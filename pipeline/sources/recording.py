"""Replays a recording written by :class:`reidstream.pipeline.recording.RecordingWriter`.

A recording cut off mid-write replays every complete frame: an unterminated
or unparsable last index line, and frames whose image files are missing or
truncated at the end, are dropped with a :class:`RecordingWarning`.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np

from reidstream.pipeline.recording import INDEX_FILE, RecordingMeta, decode_image, read_meta
from reidstream.pipeline.sources.base import AnnotatedFrame, SourceError
from reidstream.pipeline.types import DepthUnit, Frame, Modality, PersonAnnotation


class RecordingWarning(UserWarning):
    """Part of a recording was dropped because it was cut off mid-write."""


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
            as possible; frames are never dropped either way).
        loop: Start again after the last frame; indices and timestamps keep
            increasing across passes.
        start: Skip this many frames at the start of each pass.
        max_frames: Stop after yielding this many frames (None: no limit).

    Raises:
        SourceError: naming the file (and line), if ``recording.json`` is
            missing, malformed or of an unknown version, or an index line
            other than the last is corrupted.
    """

    def __init__(self, path: str | os.PathLike, *, realtime: bool = False, loop: bool = False, start: int = 0,
                 max_frames: int | None = None) -> None:
        if start < 0 or (max_frames is not None and max_frames < 0):
            raise ValueError(f"RecordingSource: expected start >= 0 and max_frames >= 0 or None, "
                             f"got {start!r}, {max_frames!r}")
        self.path = Path(path)
        self.meta: RecordingMeta = read_meta(self.path)
        self.camera_id = self.meta.camera_id
        self.modalities = self.meta.modalities
        self.realtime, self.loop, self.start, self.max_frames = realtime, loop, start, max_frames
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
        """Drops the frames from the first one with a missing or empty image file on."""
        for i, e in enumerate(entries):
            for m, name in e.files.items():
                p = self.path / name
                if not p.is_file() or p.stat().st_size == 0:
                    self._warn(f"{self.path}: frame {e.index}: {m.value} file {name} is missing or empty")
                    return entries[:i]
        return entries

    def _load(self, pos: int) -> dict[Modality, np.ndarray] | None:
        e, meta = self._entries[pos], self.meta
        images = {}
        for m, name in e.files.items():
            try:
                img = decode_image((self.path / name).read_bytes(), name)
            except OSError:
                img = None
            if img is None:
                self._warn(f"{self.path}: frame {e.index}: {m.value} file {name} is truncated or undecodable")
                del self._entries[pos:]
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
            pos = self.start
            while pos < len(self._entries):
                if self._closed or (self.max_frames is not None and yielded >= self.max_frames):
                    return
                images = self._load(pos)
                if images is None:
                    break
                e = self._entries[pos]
                ts = e.timestamp + ts_shift
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
            if not self.loop:
                return
            passes += 1

    def close(self) -> None:
        """Stops iteration; idempotent."""
        self._closed = True

    def __enter__(self) -> "RecordingSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
