"""Writing recordings: :class:`RecordingWriter` (frame by frame, e.g. as a sink) and :func:`record` (a whole source).

Frames are written into a new directory in the format of :mod:`reidstream.pipeline.recording.format`
(``docs/recording-format.md``); ``record`` replaces an existing recording only once the new one is complete.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from reidstream.pipeline.atomic import atomic_write_bytes
from reidstream.pipeline.recording.format import (COLOUR_FORMATS, INDEX_FILE, IR_BITS, META_FILE, THERMAL_ENCODINGS,
                                                  RecordingMeta, check_target, encode_image)
from reidstream.pipeline.sources.base import AnnotatedFrame, Source
from reidstream.pipeline.types import Alignment, DepthUnit, Frame, Intrinsics, Modality


def _software() -> str:
    try:
        from importlib.metadata import version
        return f"reid-stream {version('reid-stream')}"
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "reid-stream"


_THERMAL_BY_DTYPE = {np.dtype(v): k for k, v in THERMAL_ENCODINGS.items()}
_IR_BY_DTYPE = {np.dtype(v): k for k, v in IR_BITS.items()}


def depth_to_mm(frame: Frame) -> np.ndarray:
    """The frame's depth as uint16 millimetres (float metres are rounded; NaN, <= 0, > 65.535 m -> 0)."""
    d = frame.image(Modality.DEPTH)
    if frame.depth_unit is DepthUnit.MILLIMETRE:
        return d
    mm = d.astype(np.float64) * 1000.0
    valid = np.isfinite(mm) & (mm > 0) & (mm < 65535.5)
    out = np.zeros(d.shape, np.uint16)
    out[valid] = np.rint(mm[valid]).astype(np.uint16)
    return out


class RecordingWriter:
    """Writes frames into a new recording directory (see ``docs/recording-format.md``).

    Each :meth:`write` stores the frame's images (each to a temporary name,
    then renamed) and only then appends the frame's line to ``frames.jsonl``,
    so a recording cut off at any point replays every frame written before.
    ``ir_bits``, ``thermal_encoding`` and unknown stream sizes are fixed by the
    first frame when not given. Use as a context manager.

    Args:
        path: Directory to create (must not exist, or be empty).
        camera_id: Camera the frames come from.
        intrinsics: Intrinsics of the colour stream (else of the first stream).
        modalities: Streams every frame must carry.
        alignment: Registration of the non-colour streams.
        stream_intrinsics: Per-stream intrinsics for unaligned streams.
        ir_bits: 8 or 16 (IR stored as uint8/uint16 PNG).
        thermal_encoding: ``"uint8"``, ``"uint16_centikelvin"`` (16-bit PNG)
            or ``"float32_celsius"`` (``.npy``).
        fps: Nominal frame rate, recorded for information.
        colour_format: ``"png"`` (lossless, default) or ``"jpg"`` (lossy, smaller).
        png_compression: zlib level 0-9 of the PNGs (1: fast).
        jpeg_quality: JPEG quality 0-100 when ``colour_format="jpg"``.
        fsync_every: fsync the index every N frames (0: only at close).
        source: Free-form description of where the frames come from.
        overwrite: Replace an existing recording at ``path``.

    Raises:
        FileExistsError: ``path`` holds a recording (without ``overwrite``) or other files.
        ValueError: an option is out of range.
    """

    def __init__(self, path: str | os.PathLike, *, camera_id: str, intrinsics: Intrinsics,
                 modalities: Iterable[Modality | str], alignment: Alignment | str = Alignment.ALIGNED_TO_COLOR,
                 stream_intrinsics: Mapping[Modality | str, Intrinsics] | None = None, ir_bits: int | None = None,
                 thermal_encoding: str | None = None, fps: float | None = None, colour_format: str = "png",
                 png_compression: int = 1, jpeg_quality: int = 95, fsync_every: int = 0, source: str = "",
                 overwrite: bool = False) -> None:
        mods = {Modality(m) for m in modalities}
        modalities = tuple(m for m in Modality if m in mods)
        alignment = Alignment(alignment)
        streams = {Modality(k): v for k, v in (stream_intrinsics or {}).items()}
        if not modalities:
            raise ValueError("RecordingWriter: expected at least one modality, got none")
        if not isinstance(intrinsics, Intrinsics):
            raise ValueError(f"RecordingWriter: expected intrinsics to be an Intrinsics, got {intrinsics!r:.80}")
        if ir_bits not in (None, *IR_BITS) or thermal_encoding not in (None, *THERMAL_ENCODINGS) \
                or colour_format not in COLOUR_FORMATS:
            raise ValueError(f"RecordingWriter: expected ir_bits in {list(IR_BITS)}, thermal_encoding in "
                             f"{list(THERMAL_ENCODINGS)} and colour_format in {list(COLOUR_FORMATS)}; got "
                             f"{ir_bits!r}, {thermal_encoding!r}, {colour_format!r}")
        self._ref = Modality.RGB if Modality.RGB in modalities else modalities[0]
        size = (intrinsics.width, intrinsics.height)
        sizes = {m: size for m in modalities} if alignment is Alignment.ALIGNED_TO_COLOR else {self._ref: size}
        sizes.update({m: (i.width, i.height) for m, i in streams.items() if m in modalities and m not in sizes})
        created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        self._meta = RecordingMeta(str(camera_id), modalities, intrinsics, alignment, streams, sizes, ir_bits,
                                   thermal_encoding, colour_format, None if fps is None else float(fps), created,
                                   _software(), str(source))
        self._png, self._jpeg, self._fsync_every = png_compression, jpeg_quality, int(fsync_every)
        self.path = check_target(path, overwrite)
        self.path.mkdir(parents=True, exist_ok=True)
        for m in modalities:
            (self.path / m.value).mkdir(exist_ok=True)
        self._dump_meta()
        self._index = open(self.path / INDEX_FILE, "xb", buffering=0)
        self._last_index: int | None = None
        self.frames_written = 0

    @property
    def meta(self) -> RecordingMeta:
        """The recording's metadata as stored in ``recording.json``."""
        return self._meta

    def _dump_meta(self) -> None:
        text = json.dumps(self._meta.to_dict(), indent=2) + "\n"
        atomic_write_bytes(self.path / META_FILE, text.encode("utf-8"))

    def _check(self, f: Frame) -> dict[Modality, np.ndarray]:
        """Validates a frame against the recording; returns the images to store."""
        meta, where = self._meta, f"RecordingWriter: frame {f.index}"
        if f.modalities != meta.modalities:
            raise ValueError(f"{where}: expected modalities {[m.value for m in meta.modalities]}, "
                             f"got {[m.value for m in f.modalities]}")
        if self._last_index is not None and f.index <= self._last_index:
            raise ValueError(f"{where}: expected a frame index > {self._last_index} (indices must increase)")
        if f.alignment is not meta.alignment:
            raise ValueError(f"{where}: expected alignment '{meta.alignment.value}', got '{f.alignment.value}'")
        images = {m: (depth_to_mm(f) if m is Modality.DEPTH else f.image(m)) for m in meta.modalities}
        sizes, updates = dict(meta.sizes), {}
        for m, img in images.items():
            got = (img.shape[1], img.shape[0])
            if sizes.setdefault(m, got) != got:
                raise ValueError(f"{where}: expected a {m.value} image of {sizes[m][0]}x{sizes[m][1]}, "
                                 f"got {got[0]}x{got[1]}")
        if sizes != meta.sizes:
            updates["sizes"] = sizes
        for m, key, table in ((Modality.IR, "ir_bits", _IR_BY_DTYPE),
                              (Modality.THERMAL, "thermal_encoding", _THERMAL_BY_DTYPE)):
            if m in images:
                got = table[images[m].dtype]
                want = getattr(meta, key)
                if want is None:
                    updates[key] = got
                elif want != got:
                    raise ValueError(f"{where}: expected {m.value} of dtype {np.dtype(meta.dtype(m)).name} "
                                     f"({key}={want!r}), got {images[m].dtype}")
        if updates:
            self._meta = replace(meta, **updates)
            self._dump_meta()
        return images

    def write(self, item: AnnotatedFrame | Frame) -> None:
        """Appends one frame (with its ground truth, if an :class:`AnnotatedFrame`).

        Raises:
            ValueError: naming the frame, if it does not match the recording's
                modalities, sizes, dtypes or alignment, or its index does not increase.
            RuntimeError: the writer is closed.
        """
        if self._index.closed:
            raise RuntimeError(f"RecordingWriter: {self.path} is closed")
        af = item if isinstance(item, AnnotatedFrame) else AnnotatedFrame(item)
        f = af.frame
        images = self._check(f)
        files: dict[str, str] = {}
        try:
            for m, img in images.items():
                name = self._meta.filename(m, f.index)
                data = encode_image(self._meta, m, img, self._png, self._jpeg)
                files[m.value] = name
                atomic_write_bytes(self.path / name, data, fsync=False)
        except BaseException:
            for name in files.values():  # never leave a partial frame's files behind
                for p in (self.path / name, self.path / (name + ".tmp")):
                    p.unlink(missing_ok=True)
            raise
        line = {"index": int(f.index), "timestamp": float(f.timestamp), "files": files,
                "has_ground_truth": bool(af.has_ground_truth), "annotations": [a.to_dict() for a in af.annotations]}
        data = (json.dumps(line, allow_nan=False) + "\n").encode("utf-8")
        while data:  # unbuffered: the line reaches the OS in one piece, with no later flush needed
            data = data[self._index.write(data):]
        self._last_index = int(f.index)
        self.frames_written += 1
        if self._fsync_every > 0 and self.frames_written % self._fsync_every == 0:
            os.fsync(self._index.fileno())

    def close(self) -> None:
        """Syncs and closes the index; idempotent. The recording stays valid."""
        if not self._index.closed:
            try:
                os.fsync(self._index.fileno())
            finally:
                self._index.close()

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def record(source: Source | Iterable[AnnotatedFrame], path: str | os.PathLike, *, max_frames: int | None = None,
           progress: Callable[[int], None] | None = None, progress_every: int = 0, overwrite: bool = False,
           description: str | None = None, **options) -> int:
    """Drains a source into a new recording at ``path``.

    The writer is set up from the source (camera id, modalities) and its first
    frame (intrinsics, alignment, stream intrinsics, dtypes). Ctrl-C
    (``KeyboardInterrupt``) stops recording cleanly: the recording then holds
    every frame written so far and the count is returned. The source is not closed.

    With ``overwrite``, an existing recording at ``path`` is kept until the new one is complete: the new
    one is written into a temporary sibling directory (``.NAME.tmp-PID``) and renamed into place at the
    end (Ctrl-C included). If recording fails (an exception), or no frame was written, the old recording
    is left as it was and the temporary directory is removed.

    Args:
        source: Where the frames come from.
        path: Directory of the new recording.
        max_frames: Stop after this many frames (None: until the source ends).
        progress: Called with the number of frames written after each frame.
        progress_every: Print a progress line to stderr every N frames (0: never).
        overwrite: Replace an existing recording at ``path``.
        description: Free-form description stored as ``source`` in ``recording.json``.
        **options: Further :class:`RecordingWriter` options (``fps``,
            ``colour_format``, ``source``, ``intrinsics`` when frames lack them, ...).

    Returns:
        The number of frames written.

    Raises:
        FileExistsError: see :class:`RecordingWriter`; checked before reading the source.
        ValueError: a frame does not match the first one, or has no intrinsics.
    """
    target = check_target(path, overwrite, delete=False)
    if description is not None:
        options["source"] = description
    writer: RecordingWriter | None = None
    n = 0
    if max_frames is not None and max_frames <= 0:
        return 0
    replacing = target.is_dir() and (target / META_FILE).exists()
    write_to = target.with_name(f".{target.name}.tmp-{os.getpid()}") if replacing else target
    if replacing:
        shutil.rmtree(write_to, ignore_errors=True)  # left by an earlier process with this id
    completed = False
    try:
        for item in source:
            af = item if isinstance(item, AnnotatedFrame) else AnnotatedFrame(item)
            if writer is None:
                f = af.frame
                intrinsics = options.pop("intrinsics", None) or f.intrinsics
                if intrinsics is None:
                    raise ValueError(f"record: frame {f.index} has no intrinsics; pass intrinsics=")
                fps = getattr(source, "fps", None)
                options.setdefault("fps", fps if isinstance(fps, (int, float)) and fps > 0 else None)
                options.setdefault("source", f"{type(source).__name__} ({getattr(source, 'camera_id', f.camera_id)})")
                writer = RecordingWriter(
                    write_to, camera_id=getattr(source, "camera_id", None) or f.camera_id, intrinsics=intrinsics,
                    modalities=getattr(source, "modalities", None) or f.modalities, alignment=f.alignment,
                    stream_intrinsics=options.pop("stream_intrinsics", None) or f.stream_intrinsics,
                    overwrite=overwrite and not replacing, **options)
            writer.write(af)
            n += 1
            if progress is not None:
                progress(n)
            if progress_every > 0 and n % progress_every == 0:
                print(f"reid-record: {n} frames -> {path}", file=sys.stderr, flush=True)
            if max_frames is not None and n >= max_frames:
                break
        completed = True
    except KeyboardInterrupt:
        completed = True
        print(f"reid-record: interrupted; {n} complete frames in {path}", file=sys.stderr, flush=True)
    finally:
        if writer is not None:
            writer.close()
        if replacing:
            if completed and n > 0:
                _swap_in(write_to, target)
            else:  # failed, or nothing to replace the old recording with: it stays as it was
                shutil.rmtree(write_to, ignore_errors=True)
    return n


def _swap_in(new: Path, target: Path) -> None:
    """Replaces the directory ``target`` by the complete directory ``new`` (a sibling), by renames."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)  # put the old recording back
        raise
    shutil.rmtree(old, ignore_errors=True)


__all__ = ["RecordingWriter", "depth_to_mm", "record"]
