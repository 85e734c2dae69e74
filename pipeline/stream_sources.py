"""The source a ``reid-stream`` config asks for, with buffering and reconnection for live cameras.

Replay (recordings, ``.bag`` / ``.db3`` / ``.mkv`` playback) never drops a frame: the buffer blocks.
A live camera runs in a reader thread behind a bounded buffer with the configured drop policy, and
reconnects with back-off when it disconnects or stalls; the pipeline's state (tracks, gallery) is
untouched by a reconnect.
"""

from __future__ import annotations

import sys
from pathlib import Path

from reidstream.pipeline.stream_config import StreamConfig

PLAYBACK_SUFFIXES = {".bag": "realsense", ".db3": "realsense", ".mkv": "kinect"}


def _report(kind: str, info: dict) -> None:
    detail = ", ".join(f"{k}={v}" for k, v in info.items())
    print(f"reid-stream: source {kind}" + (f" ({detail})" if detail else ""), file=sys.stderr, flush=True)


def open_stream_source(cfg: StreamConfig):
    """Returns ``(source, fps)`` for the configured camera or recording.

    Raises:
        SourceError / ValueError: the camera cannot be opened, or its config is incomplete (names it).
    """
    from reidstream.pipeline.sources.live import BufferedSource, ReconnectingSource, open_from_config

    s = cfg.source
    if s.camera == "recording":
        src = open_from_config(s)
        return BufferedSource(src, maxsize=cfg.buffer.maxsize, policy="block"), float(src.meta.fps or 15.0)
    if s.camera == "sim":
        sim = open_from_config(s)
        policy = cfg.buffer.policy if sim.realtime else "block"
        return BufferedSource(sim, maxsize=cfg.buffer.maxsize, policy=policy), float(sim.fps)
    if s.uri is not None and Path(s.uri).suffix.lower() in PLAYBACK_SUFFIXES:
        return BufferedSource(open_from_config(s), maxsize=cfg.buffer.maxsize, policy="block"), float(s.fps)
    live = ReconnectingSource(lambda: open_from_config(s), name=f"{s.camera} {s.uri or s.serial or ''}".strip(),
                              backoff=tuple(cfg.reconnect.backoff), max_retries=cfg.reconnect.max_retries,
                              on_event=_report, live=True)
    return BufferedSource(live, maxsize=cfg.buffer.maxsize, policy=cfg.buffer.policy), \
        float(s.fps)
