"""The source a reid-stream config opens: video files end at their end, devices and streams reconnect."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from reidstream.pipeline.config import ConfigError, load_config
from reidstream.pipeline.sources.base import SourceError
from reidstream.pipeline.app.config import StreamConfig
from reidstream.pipeline.app.sources import open_stream_source


def write_mp4(path: Path, frames: int = 20, size: tuple[int, int] = (320, 240), fps: float = 10.0) -> Path:
    """An mp4 (MPEG-4 part 2) of ``frames`` frames: a bright box moving right over a grey background."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened(), "this OpenCV build cannot write mp4"
    for i in range(frames):
        img = np.full((h, w, 3), 40, np.uint8)
        cv2.rectangle(img, (10 + 8 * i, 40), (60 + 8 * i, h - 20), (200, 120, 60), -1)
        writer.write(img)
    writer.release()
    return path


def test_video_file_ends_at_its_end_with_every_frame(tmp_path):
    video = write_mp4(tmp_path / "clip.mp4")
    cfg = load_config(StreamConfig, None, ["source.camera=video", f"source.uri={video}"])
    src, fps = open_stream_source(cfg)
    got, deadline = [], time.monotonic() + 60
    try:
        for item in src:  # a file replayed as a reconnecting camera would go past 20 frames
            got.append(item.frame)
            if len(got) > 60 or time.monotonic() > deadline:
                break
    finally:
        src.close()
    assert len(got) == 20
    assert [f.index for f in got] == list(range(20))
    assert got[0].rgb.shape == (240, 320, 3)
    assert fps == pytest.approx(10.0)


def test_stream_url_still_reconnects(tmp_path):
    """A stream URL that fails is reopened (here: nobody listens, so it gives up after the retries)."""
    cfg = load_config(StreamConfig, None, ["source.camera=video", "source.uri=rtsp://127.0.0.1:9/none",
                                           "reconnect.backoff=[0.01]", "reconnect.max_retries=1"])
    src, _ = open_stream_source(cfg)
    try:
        with pytest.raises(SourceError, match=r"gave up after 1 reconnect attempts.*127\.0\.0\.1"):
            list(src)
    finally:
        src.close()


@pytest.mark.parametrize("uri, live", [(0, True), ("2", True), ("/dev/video2", True), ("rtsp://cam/x", True),
                                       ("http://host:8080/video", True), ("clip.mp4", False),
                                       (Path("0"), False), ("/data/2.avi", False)])
def test_live_uri_rule(uri, live):
    from reidstream.pipeline.sources.opencv_camera import is_live_uri

    assert is_live_uri(uri) is live


def test_streams_key_is_validated():
    cfg = load_config(StreamConfig, None, ["source.camera=realsense", "source.streams=[rgb, depth]"])
    assert cfg.source.streams == ["rgb", "depth"]
    assert StreamConfig().source.streams is None
    with pytest.raises(ConfigError, match=r"source\.streams.*distinct"):
        load_config(StreamConfig, None, ["source.camera=realsense", "source.streams=[rgb, rgb]"])
    with pytest.raises(ConfigError, match=r"source\.streams"):
        load_config(StreamConfig, None, ["source.camera=realsense", "source.streams=[rgb, thermal]"])
    with pytest.raises(ConfigError, match=r"source\.streams"):
        load_config(StreamConfig, None, ["source.camera=realsense", "source.streams=[]"])
    with pytest.raises(ConfigError, match=r"source\.streams.*not camera 'video'"):
        load_config(StreamConfig, None, ["source.camera=video", "source.streams=[rgb]"])
