"""Single-stream cameras and videos read through OpenCV: webcams, USB IR and thermal cameras, RTSP/HTTP, files.

Images:
    * ``rgb``: OpenCV's BGR converted to RGB ``uint8``.
    * ``ir``: grey ``uint8``; ``uint16`` when the device delivers 16-bit frames,
      which needs ``raw=True`` (``CAP_PROP_CONVERT_RGB = 0``).
    * ``thermal``: ``thermal_format="uint8"``: display-scaled grey (use a grey
      palette, a false-colour palette cannot be inverted); ``"uint16"``:
      radiometric counts of 0.01 K, as a FLIR Lepton in TLinear mode on a
      PureThermal board delivers them in Y16 (``raw`` is then implied: the
      source sets ``CAP_PROP_CONVERT_RGB = 0`` and, on V4L2 devices, FOURCC
      ``Y16``); ``"celsius"``: the same converted to ``float32`` degrees Celsius.
      Backends that hand a Y16 frame over as a flat byte buffer are handled.

Geometry: unless ``intrinsics`` are given, a pinhole guess from the declared
horizontal field of view ``hfov_deg`` (default 60 deg, a typical webcam; a
Lepton 3.5 has 57 deg): ``fx = fy = (W / 2) / tan(hfov / 2)``, principal point
at the image centre, no distortion.

Timestamps: video files use ``CAP_PROP_POS_MSEC`` (in seconds; backends that
report it for the next frame, OpenCV's own MJPEG reader, are corrected, and a
value that does not increase falls back to one frame period on); devices and
streams use ``time.monotonic()``. The end of a file ends iteration; a failed read
of a device or stream raises :class:`SourceError`, so
:class:`~reidstream.pipeline.sources.live.ReconnectingSource` can reopen it.
"""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from reidstream.pipeline.sources.base import AnnotatedFrame, SourceError
from reidstream.pipeline.types import Frame, Intrinsics, Modality

THERMAL_FORMATS = ("uint8", "uint16", "celsius")


def redact(uri: str) -> str:
    """``uri`` without the user name and password of a URL (for logs and errors)."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def is_live_uri(uri: int | str | os.PathLike) -> bool:
    """Whether ``uri`` names a device or a stream rather than a video file.

    Args:
        uri: What :class:`OpenCVSource` is given: a device index (``0``, ``"0"``), a device path
            (``/dev/video2``), a stream URL (``rtsp://...``) or a video file.

    Returns:
        True for a device or stream (a failed read is a disconnect, worth reconnecting); False for a
        video file (its end is the end of the stream).
    """
    if isinstance(uri, (int, np.integer)) or (isinstance(uri, str) and uri.isdigit()):
        return True
    text = os.fspath(uri)
    return text.startswith("/dev/video") or "://" in text  # the rules of OpenCVSource._target


def pinhole_from_fov(width: int, height: int, hfov_deg: float) -> Intrinsics:
    """Square-pixel pinhole intrinsics with the given horizontal field of view, centred."""
    fx = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return Intrinsics(width, height, fx, fx, (width - 1) / 2.0, (height - 1) / 2.0)


class OpenCVSource:
    """A :class:`~reidstream.pipeline.sources.base.Source` of one modality read with ``cv2.VideoCapture``.

    Args:
        uri: Device index (``0`` or ``"0"``), device path (``"/dev/video2"``),
            stream URL (``rtsp://``, ``http://``...) or video file.
        modality: What the images are: ``"rgb"``, ``"ir"`` or ``"thermal"``.
        camera_id: Name of the camera (default from the uri: ``cam0``, ``video2``, the host, the file stem).
        intrinsics: Camera intrinsics (default: :func:`pinhole_from_fov` with ``hfov_deg``).
        hfov_deg: Horizontal field of view for the default intrinsics.
        fps: Requested frame rate (devices); for files, overrides the file's rate for pacing.
        width: Requested width (devices).
        height: Requested height (devices).
        realtime: Pace a video file at its frame rate (devices and streams are always live).
        max_frames: Stop after this many frames (None: until closed or the file ends).
        thermal_format: ``"uint8"``, ``"uint16"`` or ``"celsius"`` (see the module notes).
        raw: Ask OpenCV for unconverted frames (``CAP_PROP_CONVERT_RGB = 0``), e.g. 16-bit IR.

    Raises:
        SourceError: the file does not exist or the capture cannot be opened (naming it).
    """

    def __init__(self, uri: int | str | os.PathLike, modality: Modality | str, *, camera_id: str | None = None,
                 intrinsics: Intrinsics | None = None, hfov_deg: float = 60.0, fps: float | None = None,
                 width: int | None = None, height: int | None = None, realtime: bool = False,
                 max_frames: int | None = None, thermal_format: str = "uint8", raw: bool | None = None) -> None:
        self.modality = Modality(modality)
        if self.modality is Modality.DEPTH:
            raise ValueError("OpenCVSource.modality: expected 'rgb', 'ir' or 'thermal' (depth needs an RGB-D source)")
        if thermal_format not in THERMAL_FORMATS:
            raise ValueError(f"OpenCVSource.thermal_format: expected one of {THERMAL_FORMATS}, got {thermal_format!r}")
        if not 0 < hfov_deg < 180 or (max_frames is not None and max_frames < 0) or (fps is not None and fps <= 0):
            raise ValueError(f"OpenCVSource: expected 0 < hfov_deg < 180, fps > 0 and max_frames >= 0, "
                             f"got {hfov_deg}, {fps}, {max_frames}")
        self.modalities = (self.modality,)
        self.thermal_format, self.realtime, self.max_frames = thermal_format, realtime, max_frames
        self._wide = self.modality is Modality.THERMAL and thermal_format != "uint8"
        self.raw = self._wide if raw is None else raw
        target, api, self.live, self.where, default_id = self._target(uri)
        self.camera_id = camera_id or default_id
        self._intrinsics = intrinsics
        self.hfov_deg = hfov_deg
        self._lock = threading.Lock()
        self._reading = self._closed = False
        self._cap = cap = cv2.VideoCapture(target, api)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.where}: cannot be opened by OpenCV (backends: "
                              f"{[cv2.videoio_registry.getBackendName(b) for b in cv2.videoio_registry.getBackends()]})")
        if self.raw:
            if self._wide and api == cv2.CAP_V4L2:
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"Y16 "))
            cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
        if self.live:
            for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                                (cv2.CAP_PROP_FPS, fps)):
                if value:
                    cap.set(prop, value)
        self.backend = cap.getBackendName()
        self.fps = float(fps or cap.get(cv2.CAP_PROP_FPS) or 30.0)

    @staticmethod
    def _target(uri) -> tuple:
        """(what to open, API preference, live?, description for errors, default camera id)."""
        if isinstance(uri, (int, np.integer)) or (isinstance(uri, str) and uri.isdigit()):
            return int(uri), cv2.CAP_ANY, True, f"camera {int(uri)}", f"cam{int(uri)}"
        text = os.fspath(uri)
        if text.startswith("/dev/video"):
            return text, cv2.CAP_V4L2, True, f"camera {text}", Path(text).name
        if "://" in text:
            host = urlsplit(text).hostname or "stream"
            return text, cv2.CAP_ANY, True, f"stream {redact(text)}", host
        path = Path(text)
        if not path.is_file():
            raise SourceError(f"video file {path}: does not exist (or is not a file)")
        return str(path), cv2.CAP_ANY, False, f"video file {path}", path.stem

    def _image(self, img: np.ndarray, index: int) -> np.ndarray:
        m = self.modality
        if m is Modality.RGB:
            if img.dtype != np.uint8:
                raise SourceError(f"{self.where}: frame {index}: expected 8-bit colour, got {img.dtype}")
            code = {2: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}.get(img.ndim if img.ndim == 2
                                                                                            else img.shape[2])
            if code is None:
                raise SourceError(f"{self.where}: frame {index}: expected a grey or BGR image, got {img.shape}")
            return cv2.cvtColor(img, code)
        wide = self._as_16bit(img)
        if self._wide:
            if wide is None:
                raise SourceError(f"{self.where}: frame {index}: expected 16-bit (Y16) thermal frames, got "
                                  f"{img.dtype} {img.shape}; is the camera in Y16 / radiometric mode?")
            if self.thermal_format == "celsius":
                return (wide.astype(np.float32) * np.float32(0.01) - np.float32(273.15)).astype(np.float32)
            return wide
        if wide is not None:
            if m is Modality.IR:
                return wide
            raise SourceError(f"{self.where}: frame {index}: got 16-bit thermal frames; "
                              f"use thermal_format='uint16' (0.01 K) or 'celsius'")
        if img.ndim == 3:
            return cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
        if img.ndim == 2 and img.dtype == np.uint8:
            return img
        raise SourceError(f"{self.where}: frame {index}: expected a grey image, got {img.dtype} {img.shape}")

    def _as_16bit(self, img: np.ndarray) -> np.ndarray | None:
        """A 16-bit frame, also from a flat Y16 byte buffer of ``2 * W * H`` bytes; None if 8-bit."""
        if img.dtype == np.uint16 and img.ndim == 2:
            return img
        w, h = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if img.dtype == np.uint8 and w > 0 and h > 0 and img.size == 2 * w * h and (img.ndim == 1 or 1 in img.shape):
            return np.ascontiguousarray(img).reshape(-1).view("<u2").reshape(h, w).copy()
        return None

    def __iter__(self) -> Iterator[AnnotatedFrame]:
        index, last_ts, wall0 = 0, None, None
        while self.max_frames is None or index < self.max_frames:
            with self._lock:
                if self._closed:
                    return
                self._reading = True
            pre = self._cap.get(cv2.CAP_PROP_POS_MSEC) if not self.live else 0.0
            ok, img = self._cap.read()
            with self._lock:
                self._reading = False
                if self._closed:
                    self._cap.release()
                    return
            if not ok or img is None:
                if self.live:
                    raise SourceError(f"{self.where}: read failed after {index} frames (disconnected?)")
                return
            image = self._image(img, index)
            if self.live:
                ts = time.monotonic()
            else:
                ts = (pre if self.backend == "CV_MJPEG" else self._cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
                if last_ts is not None and not ts > last_ts:
                    ts = last_ts + 1.0 / self.fps
                if self.realtime:
                    now = time.monotonic()
                    wall0 = now - ts if wall0 is None else wall0
                    time.sleep(max(0.0, wall0 + ts - now))
            last_ts = ts
            h, w = image.shape[:2]
            if self._intrinsics is None:
                self._intrinsics = pinhole_from_fov(w, h, self.hfov_deg)
            elif (self._intrinsics.width, self._intrinsics.height) != (w, h):
                raise SourceError(f"{self.where}: frame {index} is {w}x{h}, the intrinsics given are "
                                  f"{self._intrinsics.width}x{self._intrinsics.height}")
            yield AnnotatedFrame(Frame(**{self.modality.value: image}, intrinsics=self._intrinsics, timestamp=ts,
                                       index=index, camera_id=self.camera_id))
            index += 1

    def close(self) -> None:
        """Releases the capture (after the read in progress, if any); idempotent."""
        with self._lock:
            self._closed = True
            if not self._reading:
                self._cap.release()

    def __enter__(self) -> "OpenCVSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
