"""Intel RealSense D4xx cameras, live or played back from a ``.bag`` / ``.db3`` recording.

Geometry rule (which streams are declared registered to colour):

* Depth is registered to colour by ``rs.align(rs.stream.color)`` when
  ``align_to_color`` is set; its pixels then share the colour intrinsics.
* ``rs.align`` does not touch infrared. IR stream 1 is the left imager, the
  reference frame of depth, so it shares the (unaligned) depth geometry. It is
  kept in that geometry, never resampled.
* A frame is ``ALIGNED_TO_COLOR`` only when every stream in it shares one
  geometry: colour plus aligned depth, or depth and/or IR without colour (then
  ``intrinsics`` are the depth/IR intrinsics). Otherwise (colour with IR, or
  colour with unaligned depth) it is ``UNALIGNED`` and ``stream_intrinsics``
  holds the intrinsics of every non-colour stream: depth (the colour intrinsics
  when aligned) and IR (its own).

Depth is returned as ``uint16`` millimetres whatever the device's depth unit
(``first_depth_sensor().get_depth_scale()``): with a unit other than 1 mm
(D405: 0.1 mm) values are rescaled and rounded; readings beyond 65.535 m become
0 (no depth). Timestamps are the device timestamps in seconds; ``index`` counts
the frames this source yields, from 0.

Playback does not go through ``rs.pipeline``: its syncer drops the first frames
of a file and pairs frames inconsistently (librealsense issues #1180, #5107).
The file is opened with ``config.enable_device_from_file`` and resolved to its
playback device, whose sensors deliver every frame to a frame queue; frames whose
timestamps lie within half a frame period make one capture (a capture missing
one of the requested streams is skipped and counted in ``skipped``). Frames are
then aligned with the same ``rs.align`` as live. With ``realtime=False`` every
frame of the file is delivered; the end of the file ends iteration.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from reidstream.pipeline.sources.base import AnnotatedFrame, SourceError
from reidstream.pipeline.types import Alignment, DepthUnit, Frame, Intrinsics, Modality

PLAYBACK_SUFFIXES = (".bag", ".db3")
_EOF_GRACE_S = 0.1  # the file reports "stopped" once its last frames are queued; a margin on top
_QUEUE_BYTES = 64 << 20  # playback frames queued at most (per stream: 32 to 256 captures)
_INSTALL_HINT = "pip install pyrealsense2 (Linux also needs libusb: apt-get install libusb-1.0-0)"


def _import_rs():
    try:
        import pyrealsense2 as rs
    except (ImportError, OSError) as e:
        raise SourceError(f"RealSense: pyrealsense2 cannot be imported ({e}); {_INSTALL_HINT}") from None
    return rs


def list_realsense_devices() -> list[dict]:
    """The connected RealSense devices: ``name``, ``serial``, ``firmware`` (and ``usb``, the USB type)."""
    rs = _import_rs()
    out = []
    for dev in rs.context().query_devices():
        def info(key, dev=dev):
            return dev.get_info(key) if dev.supports(key) else None
        out.append({"name": info(rs.camera_info.name), "serial": info(rs.camera_info.serial_number),
                    "firmware": info(rs.camera_info.firmware_version),
                    "usb": info(rs.camera_info.usb_type_descriptor)})
    return out


def _intrinsics(rs, i) -> Intrinsics:
    """``rs.intrinsics`` -> :class:`Intrinsics`; Brown-Conrady variants keep ``k1 k2 p1 p2 k3``."""
    brown = (rs.distortion.brown_conrady, rs.distortion.modified_brown_conrady, rs.distortion.inverse_brown_conrady)
    coeffs = tuple(float(c) for c in i.coeffs[:5]) if i.model in brown and any(i.coeffs[:5]) else ()
    return Intrinsics(int(i.width), int(i.height), float(i.fx), float(i.fy), float(i.ppx), float(i.ppy), coeffs)


def depth_to_mm(raw: np.ndarray, scale: float) -> np.ndarray:
    """Raw ``z16`` depth in units of ``scale`` metres -> ``uint16`` millimetres (0 stays 0)."""
    if math.isclose(scale, 0.001, rel_tol=1e-4):
        return np.array(raw, dtype=np.uint16, copy=True)
    mm = np.rint(raw.astype(np.float64) * (scale * 1000.0))
    mm[mm > 65535] = 0
    return mm.astype(np.uint16)


class RealSenseSource:
    """A :class:`~reidstream.pipeline.sources.base.Source` over a RealSense camera or recording.

    Args:
        serial: Serial number of the device (None: the first one). Live only.
        playback: A ``.bag`` / ``.db3`` recording to play instead of a live device.
        width: Requested width of every stream (live).
        height: Requested height of every stream (live).
        fps: Requested frame rate (live).
        streams: Any of ``"rgb"`` (colour, rgb8), ``"depth"`` (z16), ``"ir"`` (infrared 1, y8). None: all
            three live; from a recording, every one of them the file holds.
        align_to_color: Resample depth into the colour geometry (see the module notes).
        realtime: Play a recording at its recorded pace (librealsense may then drop
            frames a slow consumer misses); False: every frame, as fast as consumed.
        max_frames: Stop after this many frames (None: until closed or the file ends).
        camera_id: Name of the camera (default ``realsense-<serial>`` or the file stem).
        timeout_s: A live camera (or a playback) that delivers nothing for this long
            raises :class:`SourceError`.

    Raises:
        SourceError: pyrealsense2 missing, no such device or file, or streams the
            device / file cannot provide; naming the device or file.
    """

    def __init__(self, serial: str | None = None, *, playback: str | os.PathLike | None = None,
                 width: int = 640, height: int = 480, fps: int = 30,
                 streams: Sequence[str] | None = None, align_to_color: bool = True,
                 realtime: bool = False, max_frames: int | None = None, camera_id: str | None = None,
                 timeout_s: float = 5.0) -> None:
        names = ("rgb", "depth", "ir")
        if streams is not None:
            wanted = {Modality(s) for s in streams if s in names}
            if not wanted or len(wanted) != len(tuple(streams)):
                raise ValueError(f"RealSenseSource.streams: expected distinct 'rgb', 'depth', 'ir', got {streams!r}")
        if min(width, height, fps) <= 0 or (max_frames is not None and max_frames < 0) or timeout_s <= 0:
            raise ValueError(f"RealSenseSource: expected positive width/height/fps/timeout_s and max_frames >= 0, "
                             f"got {width}, {height}, {fps}, {timeout_s}, {max_frames}")
        if serial is not None and playback is not None:
            raise ValueError("RealSenseSource: give serial (live) or playback (file), not both")
        self._requested = None if streams is None else tuple(m for m in Modality if m in wanted)
        self.modalities = self._requested or (Modality.RGB, Modality.DEPTH, Modality.IR)
        self.playback = Path(playback) if playback is not None else None
        self.serial, self.max_frames, self.realtime, self.timeout_s = serial, max_frames, realtime, timeout_s
        self.camera_id = camera_id or (self.playback.stem if self.playback else f"realsense-{serial or 0}")
        self.where = f"RealSense recording {self.playback}" if self.playback else f"RealSense {serial or '(first device)'}"
        self.skipped = 0
        self._closed = False
        self._rs = _import_rs()
        self._align = None
        self._intr: dict[tuple, Intrinsics] = {}
        self._pipe = self._sensors = self._device = None
        self.depth_scale = 0.001
        if self.playback is None:
            self._open_live(width, height, fps)
        else:
            self._open_playback()
        if align_to_color and {Modality.RGB, Modality.DEPTH} <= set(self.modalities):
            self._align = self._rs.align(self._rs.stream.color)

    def _read_depth_scale(self) -> None:
        if Modality.DEPTH in self.modalities:
            try:
                self.depth_scale = float(self._device.first_depth_sensor().get_depth_scale())
            except RuntimeError as e:
                raise SourceError(f"{self.where}: no depth sensor with a depth unit ({e})") from None

    def _open_live(self, width: int, height: int, fps: int) -> None:
        rs = self._rs
        pipe, cfg = rs.pipeline(), rs.config()
        if self.serial:
            cfg.enable_device(self.serial)
        if Modality.RGB in self.modalities:
            cfg.enable_stream(rs.stream.color, width, height, rs.format.rgb8, fps)
        if Modality.DEPTH in self.modalities:
            cfg.enable_stream(rs.stream.depth, width, height, rs.format.z16, fps)
        if Modality.IR in self.modalities:
            cfg.enable_stream(rs.stream.infrared, 1, width, height, rs.format.y8, fps)
        try:
            profile = pipe.start(cfg)
        except RuntimeError as e:
            names = [m.value for m in self.modalities]
            raise SourceError(f"{self.where}: cannot start {names} at {width}x{height}@{fps} ({e})") from None
        self._pipe, self._device = pipe, profile.get_device()
        self.fps = float(fps)
        try:
            self._read_depth_scale()
        except SourceError:
            self.close()
            raise

    def _open_playback(self) -> None:
        rs, path = self._rs, self.playback
        if path.suffix.lower() not in PLAYBACK_SUFFIXES or not path.is_file():
            raise SourceError(f"{self.where}: expected an existing .bag or .db3 file")
        cfg = rs.config()
        cfg.enable_device_from_file(str(path), repeat_playback=False)
        try:
            self._device = cfg.resolve(rs.pipeline_wrapper(rs.pipeline())).get_device()
        except RuntimeError as e:
            raise SourceError(f"{self.where}: cannot be opened ({e})") from None
        self._player = self._device.as_playback()
        self._player.set_real_time(self.realtime)
        kinds = {Modality.RGB: rs.stream.color, Modality.DEPTH: rs.stream.depth, Modality.IR: rs.stream.infrared}
        chosen: dict[Modality, tuple] = {}
        found = []
        for sensor in self._device.query_sensors():
            for p in sensor.get_stream_profiles():
                found.append(f"{p.stream_name()} {p.format()}".replace("format.", ""))
                for m, kind in kinds.items():
                    rank = p.stream_index() != 1 if m is Modality.IR else 0  # prefer infrared 1
                    if p.stream_type() == kind and (m not in chosen or rank < chosen[m][0]):
                        chosen[m] = (rank, sensor, p)
        have = [m.value for m in Modality if m in chosen]
        if self._requested is None:  # every stream the file holds
            if not have:
                raise SourceError(f"{self.where}: has no colour, depth or infrared stream (it has {found})")
            self.modalities = tuple(m for m in Modality if m in chosen)
        missing = [m.value for m in self.modalities if m not in chosen]
        if missing:
            raise SourceError(f"{self.where}: has no {missing} stream (it has {have}: {found}); choose among "
                              f"{have} with streams= (reid-stream: source.streams=[{','.join(have)}]), or leave "
                              f"streams unset to open every stream the file holds")
        chosen = {m: chosen[m] for m in self.modalities}
        self._read_depth_scale()
        by_sensor: dict[int, tuple] = {}
        for m, (_, sensor, p) in chosen.items():
            by_sensor.setdefault(id(sensor), (sensor, []))[1].append(p)
        self._by_uid = {p.unique_id(): m for m, (_, _, p) in chosen.items()}
        ref = chosen[self.modalities[0]][2]
        self.fps = float(ref.fps() or 30)
        # A native frame queue, not a Python callback: librealsense's reader then never waits for the GIL
        # (playback.pause/resume hold it while they wait for the reader), and a full queue holds the reader
        # back instead of dropping frames. resume() waits for the reader: were the queue to fill before
        # that wait starts, it would time out after 10 s (harmless but slow), hence a generous capacity.
        size = sum(p.as_video_stream_profile().width() * p.as_video_stream_profile().height() * 3
                   for _, _, p in chosen.values())
        self._queue = rs.frame_queue(int(min(256, max(32, _QUEUE_BYTES // max(size, 1)))) * len(chosen),
                                     keep_frames=True)
        self._sensors = [sensor for sensor, _ in by_sensor.values()]
        for sensor, profiles in by_sensor.values():
            sensor.open(profiles)
        self._player.pause()  # starting the first sensor starts reading: the others would miss frames
        for sensor in self._sensors:
            sensor.start(queue=self._queue)  # by keyword: positionally it binds the Python-callback overload
        self._player.resume()

    def __iter__(self) -> Iterator[AnnotatedFrame]:
        sets = self._live_sets() if self.playback is None else self._playback_sets()
        index = 0
        for frames in sets:
            if self._closed or (self.max_frames is not None and index >= self.max_frames):
                return
            frame = self._frame(frames, index)
            if frame is None:
                self.skipped += 1
                continue
            yield AnnotatedFrame(frame)
            index += 1

    def _live_sets(self) -> Iterator[dict]:
        rs = self._rs
        while not self._closed:
            try:
                ok, fs = self._pipe.try_wait_for_frames(int(self.timeout_s * 1000))
            except RuntimeError as e:
                if self._closed:
                    return
                raise SourceError(f"{self.where}: reading failed ({e})") from None
            if self._closed:
                return
            if not ok:
                raise SourceError(f"{self.where}: no frames for {self.timeout_s:g} s (disconnected?)")
            yield self._split(rs, self._align.process(fs) if self._align else fs)

    def _split(self, rs, fs) -> dict:
        got = {Modality.RGB: fs.get_color_frame(), Modality.DEPTH: fs.get_depth_frame(),
               Modality.IR: fs.first_or_default(rs.stream.infrared)}
        return {m: got[m] for m in self.modalities}

    def _playback_sets(self) -> Iterator[dict]:
        pending = {m: deque() for m in self.modalities}
        ref, tol = self.modalities[0], 500.0 / self.fps  # half a frame period, in ms
        last = time.monotonic()
        eof_since = None
        while not self._closed:
            ok, f = self._queue.try_wait_for_frame(50)
            if self._closed:
                return
            if not ok:
                now = time.monotonic()
                if self._player.current_status() == self._rs.playback_status.stopped:
                    eof_since = eof_since or now
                    if now - eof_since >= _EOF_GRACE_S:
                        break
                elif now - last > self.timeout_s:
                    raise SourceError(f"{self.where}: playback stalled (no frame for {self.timeout_s:g} s)")
                continue
            last, eof_since = time.monotonic(), None
            pending[self._by_uid[f.profile.unique_id()]].append(f)
            yield from self._pairs(pending, ref, tol, final=False)
        yield from self._pairs(pending, ref, tol, final=True)
        self.skipped += sum(len(q) for q in pending.values())

    def _pairs(self, pending: dict, ref: Modality, tol: float, final: bool) -> Iterator[dict]:
        """Groups the oldest reference frame with the other streams' frames of the same capture."""
        while pending[ref]:
            t = pending[ref][0].get_timestamp()
            match = {}
            for m, q in pending.items():
                if m is ref:
                    continue
                while q and q[0].get_timestamp() < t - tol:
                    q.popleft()  # no reference frame for it: a capture cut short
                    self.skipped += 1
                if not q and not final:
                    return  # its partner may still come
                match[m] = q[0] if q and q[0].get_timestamp() <= t + tol else None
            frames = {ref: pending[ref].popleft()}
            if any(f is None for f in match.values()):
                self.skipped += 1
                continue
            for m, f in match.items():
                frames[m] = pending[m].popleft()
            yield self._aligned(frames) if self._align else frames

    def _aligned(self, frames: dict) -> dict:
        rs = self._rs
        if not hasattr(self, "_composer"):
            self._composer_input: list = []
            self._composer = rs.processing_block(
                lambda f, src: src.frame_ready(src.allocate_composite_frame(self._composer_input)))
            self._composed = rs.frame_queue(2)
            self._composer.start(self._composed)
        self._composer_input = list(frames.values())
        self._composer.invoke(frames[self.modalities[0]])
        fs = self._composed.wait_for_frame(int(self.timeout_s * 1000)).as_frameset()
        return self._split(rs, self._align.process(fs))

    def _stream_intrinsics(self, f) -> Intrinsics:
        p = f.profile.as_video_stream_profile()
        key = (p.stream_type(), p.stream_index(), p.width(), p.height(), p.unique_id())
        if key not in self._intr:
            self._intr[key] = _intrinsics(self._rs, p.get_intrinsics())
        return self._intr[key]

    def _frame(self, frames: dict, index: int) -> Frame | None:
        if any(not f for f in frames.values()):
            return None
        images, intr = {}, {}
        for m, f in frames.items():
            images[m] = self._image(m, f)
            intr[m] = self._stream_intrinsics(f)
        ref = self.modalities[0]
        registered = {Modality.RGB: ref is Modality.RGB,
                      Modality.DEPTH: ref is Modality.DEPTH or (ref is Modality.RGB and self._align is not None),
                      Modality.IR: ref is not Modality.RGB}
        same = all(registered[m] and images[m].shape[:2] == images[ref].shape[:2] for m in images)
        streams = {} if same else {m: i for m, i in intr.items() if m is not Modality.RGB}
        return Frame(**{m.value: img for m, img in images.items()}, intrinsics=intr[ref],
                     timestamp=frames[ref].get_timestamp() / 1000.0, index=index, camera_id=self.camera_id,
                     depth_unit=DepthUnit.MILLIMETRE, stream_intrinsics=streams,
                     alignment=Alignment.ALIGNED_TO_COLOR if same else Alignment.UNALIGNED)

    def _image(self, m: Modality, f) -> np.ndarray:
        rs = self._rs
        fmt = f.profile.format()
        data = np.asanyarray(f.get_data())
        if m is Modality.DEPTH:
            return depth_to_mm(data, self.depth_scale)
        if m is Modality.IR:
            if fmt not in (rs.format.y8, rs.format.y16):
                raise SourceError(f"{self.where}: infrared format {fmt} not supported (expected y8 or y16)")
            return np.array(data, copy=True)
        if fmt == rs.format.rgb8:
            return np.array(data, copy=True)
        if fmt == rs.format.bgr8:
            return np.ascontiguousarray(data[..., ::-1])
        if fmt in (rs.format.rgba8, rs.format.bgra8):
            return np.ascontiguousarray(data[..., :3] if fmt == rs.format.rgba8 else data[..., 2::-1])
        if fmt == rs.format.yuyv:
            import cv2
            h, w = f.as_video_frame().get_height(), f.as_video_frame().get_width()
            return cv2.cvtColor(np.asarray(data, np.uint8).reshape(h, w, 2), cv2.COLOR_YUV2RGB_YUYV)
        raise SourceError(f"{self.where}: colour format {fmt} not supported (rgb8, bgr8, rgba8, bgra8, yuyv)")

    def close(self) -> None:
        """Stops streaming and releases the device or file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        stopped, drain = threading.Event(), None
        if self._sensors:  # a reader blocked on a full queue would never let the sensors stop: keep draining
            drain = threading.Thread(target=self._drain, args=(stopped,), daemon=True)
            drain.start()
        try:
            for stop in ([self._pipe.stop] if self._pipe else []) + \
                        [f for s in (self._sensors or []) for f in (s.stop, s.close)]:
                try:
                    stop()
                except RuntimeError:
                    pass  # already stopped (e.g. the device is gone)
        finally:
            stopped.set()
            if drain is not None:
                drain.join(2.0)

    def _drain(self, stopped: threading.Event) -> None:
        while not stopped.is_set():
            self._queue.try_wait_for_frame(10)
        while self._queue.poll_for_frame():
            pass  # release the frames still queued

    def __enter__(self) -> "RealSenseSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
