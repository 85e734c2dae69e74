"""Microsoft Kinect cameras: Azure Kinect through pyk4a, older Kinects / Xtion through OpenCV's OpenNI2 backend.

Azure Kinect (:class:`AzureKinectSource`): colour BGRA (or the MJPG of a
recording) -> RGB; depth ``uint16`` mm and IR ``uint16`` either in the depth
camera's geometry or, with ``align_to_color``, resampled into the colour camera
by the SDK's transformation (``capture.transformed_depth`` /
``capture.transformed_ir``). Intrinsics, including the 8 rational-model
distortion coefficients (OpenCV order), come from the device or file
calibration. Timestamps are the device timestamps in seconds.

Kinect v1 / Xtion (:class:`OpenNISource`): needs an OpenCV built with OpenNI2
(``WITH_OPENNI2=ON``); the opencv-python wheels are not. Depth is registered
to colour by the device (``CAP_OPENNI_DEPTH_GENERATOR_REGISTRATION``). A Kinect
v1 cannot stream colour and IR at once. OpenNI reports only the depth focal
length; other intrinsics are a pinhole guess from the nominal field of view
(colour 62 deg, depth/IR 58.5 deg) unless given.

Frame alignment follows the rule of :mod:`~reidstream.pipeline.sources.realsense`:
``ALIGNED_TO_COLOR`` when every stream shares one geometry, otherwise
``UNALIGNED`` with the non-colour intrinsics in ``stream_intrinsics``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from reidstream.pipeline.sources.base import AnnotatedFrame, SourceError
from reidstream.pipeline.sources.opencv_camera import pinhole_from_fov
from reidstream.pipeline.types import Alignment, DepthUnit, Frame, Intrinsics, Modality

COLOR_RESOLUTIONS = {"720p": "RES_720P", "1080p": "RES_1080P", "1440p": "RES_1440P", "1536p": "RES_1536P",
                     "2160p": "RES_2160P", "3072p": "RES_3072P"}
DEPTH_MODES = ("nfov_2x2binned", "nfov_unbinned", "wfov_2x2binned", "wfov_unbinned")


def _modalities(owner: str, streams: Sequence[str]) -> tuple[Modality, ...]:
    wanted = {Modality(s) for s in streams}
    if not wanted or Modality.THERMAL in wanted or len(wanted) != len(tuple(streams)):
        raise ValueError(f"{owner}.streams: expected distinct 'rgb', 'depth', 'ir', got {streams!r}")
    return tuple(m for m in Modality if m in wanted)


def _frame(images: dict, intr: dict, registered: dict, ref: Modality, ts: float, index: int, camera_id: str) -> Frame:
    """A frame, ``ALIGNED_TO_COLOR`` only when every stream is registered to ``ref`` at its size."""
    same = all(registered[m] and images[m].shape[:2] == images[ref].shape[:2] for m in images)
    streams = {} if same else {m: i for m, i in intr.items() if m is not Modality.RGB}
    return Frame(**{m.value: img for m, img in images.items()}, intrinsics=intr[ref], timestamp=ts, index=index,
                 camera_id=camera_id, depth_unit=DepthUnit.MILLIMETRE, stream_intrinsics=streams,
                 alignment=Alignment.ALIGNED_TO_COLOR if same else Alignment.UNALIGNED)


class AzureKinectSource:
    """A :class:`~reidstream.pipeline.sources.base.Source` over an Azure Kinect or its ``.mkv`` recording.

    Args:
        device_id: Index of the device (live).
        playback: An ``.mkv`` recording (from ``k4arecorder``) to play instead.
        color_resolution: ``"720p"`` ... ``"3072p"`` (live).
        depth_mode: ``"nfov_unbinned"`` etc. (live).
        fps: 5, 15 or 30 (live).
        streams: Any of ``"rgb"``, ``"depth"``, ``"ir"``.
        align_to_color: Resample depth and IR into the colour camera.
        realtime: Play a recording at its recorded pace.
        max_frames: Stop after this many frames.
        camera_id: Name of the camera (default ``kinect<device_id>`` or the file stem).
        timeout_s: A live device that delivers nothing for this long raises :class:`SourceError`.

    Raises:
        SourceError: pyk4a (or the Azure Kinect Sensor SDK) missing, no device,
            unreadable file, or a stream the file lacks.
    """

    def __init__(self, device_id: int = 0, *, playback: str | os.PathLike | None = None,
                 color_resolution: str = "720p", depth_mode: str = "nfov_unbinned", fps: int = 30,
                 streams: Sequence[str] = ("rgb", "depth", "ir"), align_to_color: bool = True,
                 realtime: bool = False, max_frames: int | None = None, camera_id: str | None = None,
                 timeout_s: float = 5.0) -> None:
        self.modalities = _modalities("AzureKinectSource", streams)
        if color_resolution not in COLOR_RESOLUTIONS or depth_mode not in DEPTH_MODES or fps not in (5, 15, 30):
            raise ValueError(f"AzureKinectSource: expected color_resolution in {list(COLOR_RESOLUTIONS)}, depth_mode "
                             f"in {list(DEPTH_MODES)}, fps 5/15/30; got {color_resolution!r}, {depth_mode!r}, {fps!r}")
        self.playback = Path(playback) if playback is not None else None
        self.where = f"Azure Kinect recording {self.playback}" if self.playback else f"Azure Kinect {device_id}"
        self.camera_id = camera_id or (self.playback.stem if self.playback else f"kinect{device_id}")
        self.align_to_color, self.realtime, self.max_frames = align_to_color, realtime, max_frames
        self.timeout_s, self.fps, self.skipped = timeout_s, float(fps), 0
        self._closed = False
        try:
            import pyk4a
        except (ImportError, OSError) as e:
            raise SourceError(f"{self.where}: pyk4a cannot be imported ({e}); pip install pyk4a "
                              f"(needs the Azure Kinect Sensor SDK, libk4a1.4)") from None
        self._k4a, self._device, self._player = pyk4a, None, None
        want = set(self.modalities)
        try:
            if self.playback is None:
                config = pyk4a.Config(
                    color_resolution=getattr(pyk4a.ColorResolution, COLOR_RESOLUTIONS[color_resolution])
                    if Modality.RGB in want else pyk4a.ColorResolution.OFF,
                    color_format=pyk4a.ImageFormat.COLOR_BGRA32,
                    depth_mode=getattr(pyk4a.DepthMode, depth_mode.upper())
                    if want & {Modality.DEPTH, Modality.IR} else pyk4a.DepthMode.OFF,
                    camera_fps=getattr(pyk4a.FPS, f"FPS_{fps}"),
                    synchronized_images_only=Modality.RGB in want and len(want) > 1)
                self._device = pyk4a.PyK4A(config, device_id=device_id)
                self._device.start()
                self.color_format = pyk4a.ImageFormat.COLOR_BGRA32
                self._calibration = self._device.calibration
            else:
                if not self.playback.is_file():
                    raise SourceError(f"{self.where}: does not exist")
                self._player = pyk4a.PyK4APlayback(self.playback)
                self._player.open()
                conf = self._player.configuration
                tracks = {Modality.RGB: "color_track_enabled", Modality.DEPTH: "depth_track_enabled",
                          Modality.IR: "ir_track_enabled"}
                missing = [m.value for m in self.modalities if not conf[tracks[m]]]
                if missing:
                    raise SourceError(f"{self.where}: has no {missing} track; choose streams= among the others")
                self.color_format = conf["color_format"]
                self.fps = float({0: 5, 1: 15, 2: 30}.get(int(conf["camera_fps"]), 30))
                self._calibration = self._player.calibration  # also makes get_next_capture() carry it
        except SourceError:
            self.close()
            raise
        except pyk4a.K4AException as e:
            self.close()
            raise SourceError(f"{self.where}: cannot be opened ({type(e).__name__}: {e})") from None

    def _color(self, capture) -> np.ndarray | None:
        img = capture.color
        if img is None:
            return None
        if self.color_format == self._k4a.ImageFormat.COLOR_BGRA32:
            return np.ascontiguousarray(img[..., 2::-1])
        if self.color_format == self._k4a.ImageFormat.COLOR_MJPG:
            bgr = cv2.imdecode(np.frombuffer(img, np.uint8), cv2.IMREAD_COLOR)
            return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        raise SourceError(f"{self.where}: colour format {self.color_format!r} not supported (BGRA32 or MJPG)")

    def _intrinsics(self, kind, image: np.ndarray) -> Intrinsics:
        k = self._calibration.get_camera_matrix(kind)
        dist = tuple(float(d) for d in self._calibration.get_distortion_coefficients(kind))
        h, w = image.shape[:2]
        return Intrinsics(w, h, float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]),
                          dist if any(dist) else ())

    def _captures(self) -> Iterator:
        k4a = self._k4a
        while not self._closed:
            try:
                if self._player is None:
                    yield self._device.get_capture(timeout=int(self.timeout_s * 1000))
                else:
                    yield self._player.get_next_capture()
            except EOFError:
                return
            except k4a.K4AException as e:
                if self._closed:
                    return
                raise SourceError(f"{self.where}: reading failed ({type(e).__name__}: {e})") from None

    def __iter__(self) -> Iterator[AnnotatedFrame]:
        cal = self._k4a.CalibrationType
        ref = self.modalities[0]
        index, wall0 = 0, None
        for capture in self._captures():
            if self.max_frames is not None and index >= self.max_frames:
                return
            images, intr = {}, {}
            colour = self._color(capture) if Modality.RGB in self.modalities else None
            aligned = self.align_to_color and colour is not None
            if colour is not None:
                images[Modality.RGB], intr[Modality.RGB] = colour, self._intrinsics(cal.COLOR, colour)
            ir_aligned = False
            for m in (Modality.DEPTH, Modality.IR):
                if m not in self.modalities:
                    continue
                img = None
                if aligned:
                    img = capture.transformed_depth if m is Modality.DEPTH else getattr(capture, "transformed_ir", None)
                    ir_aligned = ir_aligned or (m is Modality.IR and img is not None)
                if img is None:
                    img = capture.depth if m is Modality.DEPTH else capture.ir
                if img is not None:
                    images[m] = np.array(img, dtype=np.uint16, copy=True)
                    registered = aligned and (m is Modality.DEPTH or ir_aligned)
                    intr[m] = intr[Modality.RGB] if registered else self._intrinsics(cal.DEPTH, img)
            if len(images) != len(self.modalities):
                self.skipped += 1  # a capture without every requested image (start of a recording)
                continue
            ts_usec = capture.color_timestamp_usec if ref is Modality.RGB else capture.depth_timestamp_usec
            ts = ts_usec / 1e6
            if self.realtime and self._player is not None:
                now = time.monotonic()
                wall0 = now - ts if wall0 is None else wall0
                time.sleep(max(0.0, wall0 + ts - now))
            registered = {Modality.RGB: ref is Modality.RGB,
                          Modality.DEPTH: ref is not Modality.RGB or aligned,
                          Modality.IR: ref is not Modality.RGB or ir_aligned}
            yield AnnotatedFrame(_frame(images, intr, registered, ref, ts, index, self.camera_id))
            index += 1

    def close(self) -> None:
        """Stops the device or closes the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._device is not None and self._device.is_running:
                self._device.stop()
            if self._player is not None:
                self._player.close()
        except self._k4a.K4AException:
            pass  # not opened, or already closed

    def __enter__(self) -> "AzureKinectSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class OpenNISource:
    """A :class:`~reidstream.pipeline.sources.base.Source` over an OpenNI2 device or ``.oni`` file, through OpenCV.

    Args:
        device: Device index (live) or an ``.oni`` recording.
        streams: Any of ``"rgb"``, ``"depth"``, ``"ir"`` (not ``rgb`` with ``ir`` on a Kinect v1).
        align_to_color: Register depth to colour in the device.
        intrinsics: Colour (or only stream) intrinsics overriding the nominal guess.
        max_frames: Stop after this many frames.
        camera_id: Name of the camera (default ``openni<device>`` or the file stem).

    Raises:
        SourceError: this OpenCV has no OpenNI2 backend, or the device / file cannot be opened.
    """

    COLOR_HFOV_DEG, DEPTH_HFOV_DEG = 62.0, 58.5

    def __init__(self, device: int | str | os.PathLike = 0, *, streams: Sequence[str] = ("rgb", "depth"),
                 align_to_color: bool = True, intrinsics: Intrinsics | None = None, max_frames: int | None = None,
                 camera_id: str | None = None) -> None:
        self.modalities = _modalities("OpenNISource", streams)
        self.live = isinstance(device, (int, np.integer)) or str(device).isdigit()
        target = int(device) if self.live else os.fspath(device)
        self.where = f"OpenNI2 device {target}" if self.live else f"OpenNI2 recording {target}"
        self.camera_id = camera_id or (f"openni{target}" if self.live else Path(target).stem)
        self.max_frames, self._intrinsics, self._closed = max_frames, intrinsics, False
        if not cv2.videoio_registry.hasBackend(cv2.CAP_OPENNI2):
            raise SourceError(f"{self.where}: this OpenCV build ({cv2.__version__}) has no OpenNI2 backend; the "
                              f"opencv-python wheels are built without it. Build OpenCV with WITH_OPENNI2=ON "
                              f"and install OpenNI2 (or use AzureKinectSource / RealSenseSource)")
        if not self.live and not Path(target).is_file():
            raise SourceError(f"{self.where}: does not exist")
        self._cap = cv2.VideoCapture(target, cv2.CAP_OPENNI2)
        if not self._cap.isOpened():
            raise SourceError(f"{self.where}: cannot be opened (not connected, or OpenNI2 drivers missing)")
        cap, want = self._cap, set(self.modalities)
        cap.set(cv2.CAP_OPENNI_IMAGE_GENERATOR_PRESENT, float(Modality.RGB in want))
        if Modality.IR in want:
            cap.set(cv2.CAP_OPENNI_IR_GENERATOR_PRESENT, 1.0)
        self.registered = False
        if align_to_color and {Modality.RGB, Modality.DEPTH} <= want:
            self.registered = bool(cap.set(cv2.CAP_OPENNI_DEPTH_GENERATOR_REGISTRATION, 1.0))
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 30.0)
        self._depth_focal = float(cap.get(cv2.CAP_OPENNI_DEPTH_GENERATOR_FOCAL_LENGTH) or 0.0)

    def _guess(self, m: Modality, img: np.ndarray) -> Intrinsics:
        h, w = img.shape[:2]
        if m is not Modality.RGB and self._depth_focal > 0 and not (m is Modality.DEPTH and self.registered):
            f = self._depth_focal
            return Intrinsics(w, h, f, f, (w - 1) / 2.0, (h - 1) / 2.0)
        colour_geometry = m is Modality.RGB or (m is Modality.DEPTH and self.registered)
        return pinhole_from_fov(w, h, self.COLOR_HFOV_DEG if colour_geometry else self.DEPTH_HFOV_DEG)

    def __iter__(self) -> Iterator[AnnotatedFrame]:
        flags = {Modality.RGB: cv2.CAP_OPENNI_BGR_IMAGE, Modality.DEPTH: cv2.CAP_OPENNI_DEPTH_MAP,
                 Modality.IR: cv2.CAP_OPENNI_IR_IMAGE}
        ref, index = self.modalities[0], 0
        while not self._closed and (self.max_frames is None or index < self.max_frames):
            if not self._cap.grab():
                if self.live and not self._closed:
                    raise SourceError(f"{self.where}: grab failed after {index} frames (disconnected?)")
                return
            images = {}
            for m in self.modalities:
                ok, img = self._cap.retrieve(None, flags[m])
                if not ok or img is None:
                    raise SourceError(f"{self.where}: frame {index}: no {m.value} image")
                if m is Modality.RGB:
                    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
                elif img.dtype not in (np.uint8, np.uint16) or (m is Modality.DEPTH and img.dtype != np.uint16):
                    raise SourceError(f"{self.where}: frame {index}: unexpected {m.value} image {img.dtype}")
                images[m] = img
            intr = {m: (self._intrinsics if m is ref and self._intrinsics else self._guess(m, img))
                    for m, img in images.items()}
            registered = {Modality.RGB: True, Modality.DEPTH: ref is not Modality.RGB or self.registered,
                          Modality.IR: ref is not Modality.RGB}
            ts = time.monotonic() if self.live else index / self.fps
            yield AnnotatedFrame(_frame(images, intr, registered, ref, ts, index, self.camera_id))
            index += 1

    def close(self) -> None:
        """Releases the device (idempotent)."""
        if not self._closed:
            self._closed = True
            self._cap.release()

    def __enter__(self) -> "OpenNISource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
