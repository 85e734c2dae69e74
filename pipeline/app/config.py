"""Typed config of ``reid-stream``: source, buffering, detection, tracking, gallery and outputs.

Strict like every config here: unknown keys are errors naming the key. Every
value can be overridden on the command line (``gallery.threshold=3.0``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from reidstream.pipeline.config import ConfigModel
from reidstream.pipeline.body.measure import BodyConfig
from reidstream.pipeline.detect.depth_people import DepthPeopleConfig
from reidstream.pipeline.gallery import GalleryConfig
from reidstream.pipeline.track.floor import FloorTrackerConfig

CAMERA_KINDS = ("sim", "realsense", "kinect", "openni", "ir", "thermal", "webcam", "video", "recording")
STREAM_CAMERAS = ("realsense", "kinect", "openni")
"""Camera kinds with several streams to choose from (``source.streams``)."""
MAX_IMAGE_SIDE = 8192
"""Largest camera width / height that may be requested (8K)."""
MAX_BUFFERED_FRAMES = 256
"""Most frames the reader buffer may hold (at 640x480 with every stream about 2.5 MB each)."""


class SourceConfig(ConfigModel):
    """Where frames come from.

    Attributes:
        camera: Source kind (``recording`` is what ``--replay`` selects).
        uri: Device index or path (``/dev/video2``), RTSP/HTTP URL, video file, recording directory,
            or a RealSense / Kinect ``.bag`` / ``.db3`` / ``.mkv`` file to play back.
        serial: RealSense serial number (None: the first device).
        width: Requested width (live cameras).
        height: Requested height (live cameras).
        fps: Requested frame rate (live cameras).
        realtime: Pace playback at the recorded speed (None: live cameras and sim at real time,
            recordings as fast as possible).
        sim: Sim world config YAML (``configs/sim/*.yaml``) for ``camera: sim``; None: defaults.
        max_frames: Stop after this many frames (None: until the source ends or Ctrl-C).
        streams: The streams to open of a ``realsense``, ``kinect`` or ``openni`` camera or recording, any of
            ``rgb``, ``depth``, ``ir`` (distinct). None: the camera's default; a RealSense recording opens
            every one of these streams it holds.
    """

    camera: Literal["sim", "realsense", "kinect", "openni", "ir", "thermal", "webcam", "video", "recording"] = "sim"
    uri: str | None = None
    serial: str | None = None
    width: int = Field(640, ge=16, le=MAX_IMAGE_SIDE)
    height: int = Field(480, ge=16, le=MAX_IMAGE_SIDE)
    fps: int = Field(30, ge=1, le=1000)
    realtime: bool | None = None
    sim: str | None = None
    max_frames: int | None = Field(None, ge=0)
    streams: Annotated[list[Literal["rgb", "depth", "ir"]], Field(min_length=1)] | None = None

    @field_validator("streams")
    @classmethod
    def _streams(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return value
        if len(set(value)) != len(value):
            raise ValueError(f"expected distinct streams among rgb, depth, ir, got {value}")
        camera = info.data.get("camera")
        if camera is not None and camera not in STREAM_CAMERAS:
            raise ValueError(f"only {', '.join(STREAM_CAMERAS)} cameras have streams to choose from, not "
                             f"camera {camera!r}; remove source.streams")
        return value


class BufferConfig(ConfigModel):
    """Between the reader thread and processing: a live source never waits for a slow consumer.

    Attributes:
        maxsize: Frames held at most.
        policy: ``drop_oldest`` (live default: always process the newest frame), ``drop_newest``, or
            ``block`` (never drop; replay always uses it).
    """

    maxsize: int = Field(4, ge=1, le=MAX_BUFFERED_FRAMES)
    policy: Literal["drop_oldest", "drop_newest", "block"] = "drop_oldest"


class ReconnectConfig(ConfigModel):
    """What a live camera does when it disconnects or stalls: report, wait, reopen."""

    backoff: list[float] = Field(default_factory=lambda: [0.5, 1.0, 2.0, 4.0, 8.0], min_length=1)
    max_retries: int | None = Field(None, ge=0)


class DetectorConfig(ConfigModel):
    """Person detection.

    Attributes:
        kind: ``auto`` (YOLO on colour while it is bright enough, depth otherwise; depth only when the
            bundle has no detector), ``yolo`` or ``depth`` (no weights; RGB-D sources).
        yolo: A YOLO model file (``.pt``, ``.onnx``, ``.engine``) overriding the bundle's detector.
        conf: YOLO confidence threshold.
        classes: YOLO classes kept as people, ids or names (``[Normal, Fall]``, ``[0, 1]``), for ``detector.yolo``
            and for the bundle's detector alike; None: the model's ``person`` class (a bundle's detector: the
            classes it was exported with, ``reid-export bundle --detector-classes``). A model without a
            ``person`` class needs them; a class the model lacks is an error listing its classes.
        dark_luma: Mean colour brightness (0-255) below which ``auto`` switches to depth.
        min_box_height: Detections shorter than this (pixels) are ignored: too small to re-identify.
        depth: Settings of the depth people detector, e.g. the camera mount when it is known
            (``detector.depth.mount_height=2.2 detector.depth.tilt_deg=12``: the floor is seeded by it and kept
            within ``mount_tolerance`` / ``mount_tolerance_deg`` of it; else it is found from depth).
    """

    kind: Literal["auto", "yolo", "depth"] = "auto"
    yolo: str | None = None
    conf: float = Field(0.35, gt=0.0, lt=1.0)
    classes: Annotated[list[int | str], Field(min_length=1)] | None = None
    dark_luma: float = Field(40.0, ge=0.0, le=255.0)
    min_box_height: int = Field(48, ge=1)
    depth: DepthPeopleConfig = DepthPeopleConfig()


class TrackerConfig(ConfigModel):
    """Short-term tracking.

    Attributes:
        kind: ``floor`` (people on the floor plane with depth: 3-D position and velocity, gated by height;
            image boxes where there is no depth) or ``bytetrack`` (image boxes only).
        lost_track_buffer: ByteTrack: frames at 30 fps a lost track is kept.
        minimum_consecutive_frames: ByteTrack: detections before a track gets an id.
        floor: Settings of the floor-plane tracker.
        appearance: ``colour``: the floor tracker also compares each detection's colour statistics (hue-
            saturation of upper and lower body, the person's pixels only) with the track's, so that a box
            of the person in front does not continue the track of someone passing behind (in the dark, or
            without colour, it tracks on floor position and height alone); ``colour+ir``: in the dark also
            the contrast of garments in infrared (intensity relative to the person's median); ``none``: never.
    """

    kind: Literal["floor", "bytetrack"] = "floor"
    appearance: Literal["colour", "colour+ir", "none"] = "colour"
    lost_track_buffer: int = Field(30, ge=1)
    minimum_consecutive_frames: int = Field(2, ge=1)
    floor: FloorTrackerConfig = FloorTrackerConfig()


class EmbedConfig(ConfigModel):
    """How often tracks are embedded.

    Attributes:
        every: Embed each track on one frame in this many, staggered across tracks (a new track at
            once). Cues and identities are still given on every frame. 1: every frame. The default 3 keeps
            the default bundle's six networks in real time on 2 CPU cores (``reid-stream-bench``): 10
            embeddings per second per person at 30 fps, 5 at 15 fps. ``reid-export calibrate`` fits the
            calibration with the cadence it is given (the same default).
        workers: Networks run side by side on this many threads (0: one per CPU core, at most one per
            network); 1: one after another.
    """

    every: int = Field(3, ge=1)
    workers: int = Field(0, ge=0, le=64)


class OutputConfig(ConfigModel):
    """What is written under ``--output DIR`` (nothing without a directory, except the summary).

    Attributes:
        dir: Output directory.
        events: ``events.jsonl``: one JSON line per new / matched / expired decision.
        mot: ``tracks.txt`` (MOT-challenge format, long-term identities) and ``gt.txt`` when the
            source has ground truth, plus ``frames.jsonl`` for ``reid-score``.
        revise_s: The logs (events, MOT files, ``frames.jsonl``) hold a track's frames this many seconds after
            its identity is first decided; when the gallery switches the track to another identity within that
            time, its earlier frames are written with the identity it switched to
            (:class:`~reidstream.pipeline.sinks.relabel.Relabel`). Also, when the gallery cuts a track (the
            tracker had carried it onto another person), the frames since its first contrary re-check window
            are moved to the new track (also a last part cut off when a track ends): every frame is then held
            ``(gallery.cut_after + 0.5) x gallery.recheck_s + gallery.lost_s`` seconds (4.5 s by default).
            0: only pending frames are relabelled.
            The held results carry no images (the logs read none), so holding costs little memory.
        video: ``annotated.mp4``: modality tiles with boxes and identities.
        privacy: Never write colour pixels to disk (video shows depth / IR tiles only).
        show: A live window.
        gallery: Keep the gallery in ``DIR/gallery.npz`` (saved atomically; reloaded by ``existing: resume``).
        save_every_s: Gallery save interval in seconds of processing.
        existing: What a run does when ``dir`` already holds the outputs of a run (``events.jsonl``,
            ``tracks.txt``, ``frames.jsonl``, ``gallery.npz``, ``summary.json``, ...): ``refuse`` (an error
            naming them), ``overwrite`` (``--overwrite``: they are deleted when the run starts, a fresh
            start) or ``resume`` (``--resume``: the gallery is reloaded, so identities are kept, and the logs
            are appended to, ``frames.jsonl`` marking the restart). A directory holding a recording is
            always refused.
        metrics: Serve Prometheus metrics on ``HOST:PORT`` (``/metrics``) with a health check (``/healthz``),
            e.g. ``127.0.0.1:9108``; a bare port means ``127.0.0.1`` (``0.0.0.0:9108`` in a container). None:
            no endpoint. See :mod:`reidstream.pipeline.sinks.metrics` for the metrics.
        metrics_stale_s: ``/healthz`` answers 503 once no frame was processed for this many seconds.
        serve: Serve the browser view (live cameras, identities, events, actions; docs/web.md) on ``HOST:PORT``;
            a bare port means ``127.0.0.1``; another host than loopback needs ``--token`` /
            ``REID_STREAM_TOKEN``. None: not served.
        serve_fps: The browser view draws and encodes each camera's frame at most this often per second.
    """

    dir: str | None = None
    events: bool = True
    mot: bool = True
    revise_s: float = Field(5.0, ge=0.0, le=60.0)
    video: bool = False
    privacy: bool = False
    show: bool = False
    gallery: bool = True
    save_every_s: float = Field(10.0, gt=0.0)
    existing: Literal["refuse", "overwrite", "resume"] = "refuse"
    metrics: str | int | None = None
    metrics_stale_s: float = Field(30.0, gt=0.0)
    serve: str | int | None = None
    serve_fps: float = Field(5.0, gt=0.0, le=60.0)

    @field_validator("metrics", "serve")
    @classmethod
    def _metrics(cls, value: str | int | None) -> str | None:
        if value is None:
            return value
        from reidstream.pipeline.app.metrics import format_address, parse_address

        return format_address(*parse_address(value))


class StreamConfig(ConfigModel):
    """The whole ``reid-stream`` run.

    Attributes:
        bundle: Model bundle directory (None: the embedded default bundle).
        device: ``cpu`` or ``cuda[:N]`` for the embedders.
        enrol: Name -> image files (colour crops) of people to enrol before the stream starts.
        body: Metric body measures from depth (height, width) for tracking and identity evidence.
        embed: How often each track is embedded.
    """

    bundle: str | None = None
    device: str = "cpu"
    source: SourceConfig = SourceConfig()
    buffer: BufferConfig = BufferConfig()
    reconnect: ReconnectConfig = ReconnectConfig()
    detector: DetectorConfig = DetectorConfig()
    tracker: TrackerConfig = TrackerConfig()
    body: BodyConfig = BodyConfig()
    embed: EmbedConfig = EmbedConfig()
    gallery: GalleryConfig = GalleryConfig()
    output: OutputConfig = OutputConfig()
    enrol: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _device(self) -> "StreamConfig":
        d = self.device
        if d != "cpu" and d != "cuda" and not (d.startswith("cuda:") and d[5:].isdigit()):
            raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {d!r}")
        return self
