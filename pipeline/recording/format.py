"""The on-disk recording format: constants, metadata (``recording.json``), image codecs, target checks.

A recording is a directory holding ``recording.json`` (metadata), one folder
per modality with one lossless image per frame, and ``frames.jsonl``, an
append-only index with one line per *complete* frame. See
``docs/recording-format.md`` for the full specification;
:class:`reidstream.pipeline.sources.recording.RecordingSource` replays it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import cv2
import numpy as np

from reidstream.pipeline.sources.base import SourceError
from reidstream.pipeline.types import Alignment, DepthUnit, Intrinsics, Modality

FORMAT_NAME = "reid-stream-recording"
FORMAT_VERSION = 1
META_FILE = "recording.json"
INDEX_FILE = "frames.jsonl"
DEPTH_SCALE_M = 0.001
THERMAL_ENCODINGS = {"uint8": np.uint8, "uint16_centikelvin": np.uint16, "float32_celsius": np.float32}
IR_BITS = {8: np.uint8, 16: np.uint16}
COLOUR_FORMATS = ("png", "jpg")
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


@dataclass(frozen=True)
class RecordingMeta:
    """The parsed ``recording.json`` of a recording.

    Attributes:
        camera_id: Camera the frames came from.
        modalities: Streams every frame carries, in canonical order.
        intrinsics: Intrinsics of the colour stream (else of the first stream).
        alignment: Whether the other streams are registered to colour.
        stream_intrinsics: Per-stream intrinsics (unaligned recordings).
        sizes: ``(width, height)`` of each stream; missing before the first frame.
        ir_bits: 8 or 16, or None before the first frame / without IR.
        thermal_encoding: A key of ``THERMAL_ENCODINGS``, or None.
        colour_format: ``"png"`` (lossless) or ``"jpg"`` (lossy).
        fps: Nominal frame rate, or None if unknown.
        created: ISO 8601 UTC creation time.
        software: Software that wrote the recording.
        source: Free-form description of where the frames came from.
    """

    camera_id: str
    modalities: tuple[Modality, ...]
    intrinsics: Intrinsics
    alignment: Alignment = Alignment.ALIGNED_TO_COLOR
    stream_intrinsics: Mapping[Modality, Intrinsics] = field(default_factory=dict)
    sizes: Mapping[Modality, tuple[int, int]] = field(default_factory=dict)
    ir_bits: int | None = None
    thermal_encoding: str | None = None
    colour_format: str = "png"
    fps: float | None = None
    created: str = ""
    software: str = ""
    source: str = ""

    def to_dict(self) -> dict:
        """The JSON document stored as ``recording.json``."""
        return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "camera_id": self.camera_id,
                "modalities": [m.value for m in self.modalities], "intrinsics": self.intrinsics.to_dict(),
                "alignment": self.alignment.value,
                "stream_intrinsics": {m.value: i.to_dict() for m, i in self.stream_intrinsics.items()},
                "sizes": {m.value: list(s) for m, s in self.sizes.items()},
                "depth_unit": DepthUnit.MILLIMETRE.value, "depth_scale_m": DEPTH_SCALE_M,
                "ir_bits": self.ir_bits, "thermal_encoding": self.thermal_encoding,
                "colour_format": self.colour_format, "fps": self.fps, "created": self.created,
                "software": self.software, "source": self.source}

    @classmethod
    def from_dict(cls, d: Mapping, where: str = META_FILE) -> "RecordingMeta":
        """Parses and checks a ``recording.json`` document; ``SourceError`` naming ``where`` if bad."""
        if not isinstance(d, Mapping) or d.get("format") != FORMAT_NAME:
            got = d.get("format") if isinstance(d, Mapping) else type(d).__name__
            raise SourceError(f"{where}: not a reid-stream recording (format {got!r}, expected {FORMAT_NAME!r})")
        if d.get("version") != FORMAT_VERSION:
            raise SourceError(f"{where}: unsupported recording version {d.get('version')!r} "
                              f"(this software reads version {FORMAT_VERSION})")
        try:
            meta = cls(
                camera_id=str(d["camera_id"]),
                modalities=tuple(m for m in Modality if m in {Modality(v) for v in d["modalities"]}),
                intrinsics=Intrinsics.from_dict(d["intrinsics"]),
                alignment=Alignment(d.get("alignment", Alignment.ALIGNED_TO_COLOR.value)),
                stream_intrinsics={Modality(k): Intrinsics.from_dict(v)
                                   for k, v in (d.get("stream_intrinsics") or {}).items()},
                sizes={Modality(k): (int(v[0]), int(v[1])) for k, v in (d.get("sizes") or {}).items()},
                ir_bits=d.get("ir_bits"), thermal_encoding=d.get("thermal_encoding"),
                colour_format=d.get("colour_format", "png"), fps=d.get("fps"), created=str(d.get("created", "")),
                software=str(d.get("software", "")), source=str(d.get("source", "")))
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise SourceError(f"{where}: malformed recording metadata ({type(e).__name__}: {e})") from None
        if not meta.modalities or meta.ir_bits not in (None, *IR_BITS) or meta.colour_format not in COLOUR_FORMATS \
                or meta.thermal_encoding not in (None, *THERMAL_ENCODINGS) or d.get("depth_unit", "mm") != "mm":
            raise SourceError(f"{where}: malformed recording metadata (modalities, ir_bits, thermal_encoding, "
                              f"colour_format or depth_unit out of range)")
        return meta

    def filename(self, m: Modality, index: int) -> str:
        """Relative path of frame ``index``'s image of modality ``m``."""
        if m is Modality.RGB:
            ext = self.colour_format
        elif m is Modality.THERMAL and self.thermal_encoding == "float32_celsius":
            ext = "npy"
        else:
            ext = "png"
        return f"{m.value}/{index:06d}.{ext}"

    def dtype(self, m: Modality) -> type | None:
        """The numpy dtype that modality ``m`` is stored and replayed as (None if not fixed yet)."""
        if m is Modality.RGB:
            return np.uint8
        if m is Modality.DEPTH:
            return np.uint16
        if m is Modality.IR:
            return IR_BITS.get(self.ir_bits)
        return THERMAL_ENCODINGS.get(self.thermal_encoding)


def read_meta(path: str | os.PathLike) -> RecordingMeta:
    """Reads the metadata of the recording in directory ``path``.

    Raises:
        SourceError: naming the file, when it is missing, not JSON, or not a
            recording of a supported version.
    """
    f = Path(path) / META_FILE
    try:
        d = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(f"{f}: missing; {path} is not a reid-stream recording") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SourceError(f"{f}: unreadable recording metadata ({e})") from None
    return RecordingMeta.from_dict(d, where=str(f))


def encode_image(meta: RecordingMeta, m: Modality, img: np.ndarray, png_compression: int = 1,
                 jpeg_quality: int = 95) -> bytes:
    """Encodes one stream image as the bytes of its file (colour RGB -> file in standard RGB order)."""
    if m is Modality.THERMAL and meta.thermal_encoding == "float32_celsius":
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(img, dtype=np.float32), allow_pickle=False)
        return buf.getvalue()
    if m is Modality.RGB:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if m is Modality.RGB and meta.colour_format == "jpg":
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    else:
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(img), [cv2.IMWRITE_PNG_COMPRESSION, int(png_compression)])
    if not ok:
        raise ValueError(f"could not encode {m.value} image of shape {img.shape} and dtype {img.dtype}")
    return buf.tobytes()


def decode_image(data: bytes, name: str) -> np.ndarray | None:
    """Decodes the bytes of an image file; None when the file is truncated or undecodable."""
    if name.endswith(".npy"):
        try:
            return np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None
    if name.endswith(".png") and not data.endswith(_PNG_END):
        return None
    if name.endswith(".jpg") and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is not None and img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def check_target(path: str | os.PathLike, overwrite: bool = False, *, delete: bool = True) -> Path:
    """Checks that a recording may be written at ``path``, deleting an old one if ``overwrite``.

    Args:
        path: The recording directory to write.
        overwrite: An existing recording at ``path`` may be replaced.
        delete: With ``overwrite``, delete that recording now; False: only check (:func:`record`
            writes the new recording beside it and swaps them once it is complete).

    Raises:
        FileExistsError: ``path`` holds a recording (and not ``overwrite``) or
            other files (never deleted, even with ``overwrite``).
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise FileExistsError(f"{p}: exists and is not a directory; refusing to write a recording there")
    if p.is_dir() and any(p.iterdir()):
        if not (p / META_FILE).exists():
            raise FileExistsError(f"{p}: directory is not empty and holds no recording; refusing to write there")
        if not overwrite:
            raise FileExistsError(f"{p}: a recording already exists; pass overwrite=True to replace it")
        if delete:
            shutil.rmtree(p)
    return p
