"""The source a ``reid-stream`` config asks for, with buffering and reconnection for live cameras.

Replay (recordings, ``.bag`` / ``.db3`` / ``.mkv`` playback, video files) never drops a frame: the buffer
blocks, and the end of the file ends the run.
A live camera runs in a reader thread behind a bounded buffer with the configured drop policy, and
reconnects with back-off when it disconnects or stalls; the pipeline's state (tracks, gallery) is
untouched by a reconnect.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from reidstream.pipeline.app.config import StreamConfig
from reidstream.pipeline.types import Modality

PLAYBACK_SUFFIXES = {".bag": "realsense", ".db3": "realsense", ".mkv": "kinect"}
OPENCV_CAMERAS = ("ir", "thermal", "webcam", "video")
"""Camera kinds read through OpenCV: ``uri`` is a device, a stream URL or a video file."""
OPENCV_MODALITIES = {"ir": ("ir",), "thermal": ("thermal",), "webcam": ("rgb",), "video": ("rgb",)}
"""The one stream each OpenCV camera kind delivers."""


def _report(kind: str, info: dict) -> None:
    detail = ", ".join(f"{k}={v}" for k, v in info.items())
    print(f"reid-stream: source {kind}" + (f" ({detail})" if detail else ""), file=sys.stderr, flush=True)


def source_name(cfg: StreamConfig) -> str:
    """The configured source in words, for messages: ``video clip.mp4``, ``recording runs/rec``, ``sim``."""
    s = cfg.source
    return " ".join(str(v) for v in (s.camera, s.uri or s.serial) if v)


def source_modalities(cfg: StreamConfig, source=None) -> tuple[Modality, ...] | None:
    """The streams the configured source delivers, before its first frame.

    Args:
        cfg: The run's config.
        source: The opened source, if any (its ``modalities`` when it knows them already).

    Returns:
        The modalities; None when they are only known once a live camera is open (RealSense, Kinect
        and OpenNI cameras without ``source.streams``).
    """
    known = tuple(getattr(source, "modalities", None) or ()) if source is not None else ()
    if known:
        return tuple(Modality(m) for m in known)
    s = cfg.source
    if s.camera in OPENCV_MODALITIES:
        return tuple(Modality(m) for m in OPENCV_MODALITIES[s.camera])
    if s.streams is not None:
        return tuple(Modality(m) for m in s.streams)
    return None


def open_stream_source(cfg: StreamConfig, *, on_skip: Callable | None = None):
    """Returns ``(source, fps)`` for the configured camera or recording.

    Args:
        cfg: The run's config.
        on_skip: For a recording: called with each
            :class:`~reidstream.pipeline.sources.recording.SkippedFrame` (a frame whose image file is
            missing or corrupt, skipped) when the replay reaches it; None: a warning.

    Raises:
        SourceError / ValueError: the camera cannot be opened, or its config is incomplete (names it).
    """
    from reidstream.pipeline.sources.live import BufferedSource, ReconnectingSource, open_from_config

    s = cfg.source
    if s.camera == "recording":
        src = open_from_config(s)
        if on_skip is not None:
            src.on_skip = on_skip
        return BufferedSource(src, maxsize=cfg.buffer.maxsize, policy="block"), float(src.meta.fps or 15.0)
    if s.camera == "sim":
        sim = open_from_config(s)
        policy = cfg.buffer.policy if sim.realtime else "block"
        return BufferedSource(sim, maxsize=cfg.buffer.maxsize, policy=policy), float(sim.fps)
    if s.uri is not None and Path(s.uri).suffix.lower() in PLAYBACK_SUFFIXES:
        src = open_from_config(s)
        return BufferedSource(src, maxsize=cfg.buffer.maxsize, policy="block"), float(getattr(src, "fps", s.fps))
    if s.camera in OPENCV_CAMERAS and s.uri is not None:
        from reidstream.pipeline.sources.opencv_camera import is_live_uri

        if not is_live_uri(s.uri):  # a video file ends at its end: no reconnect, no frame dropped
            src = open_from_config(s)
            return BufferedSource(src, maxsize=cfg.buffer.maxsize, policy="block"), float(src.fps)
    live = ReconnectingSource(lambda: open_from_config(s), name=f"{s.camera} {s.uri or s.serial or ''}".strip(),
                              backoff=tuple(cfg.reconnect.backoff), max_retries=cfg.reconnect.max_retries,
                              on_event=_report, live=True)
    return BufferedSource(live, maxsize=cfg.buffer.maxsize, policy=cfg.buffer.policy), \
        float(s.fps)
