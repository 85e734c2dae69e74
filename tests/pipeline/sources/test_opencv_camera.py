"""OpenCVSource over a short MJPG video written with cv2.VideoWriter."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from reidstream.pipeline.sources import SourceError
from reidstream.pipeline.sources.opencv_camera import OpenCVSource, pinhole_from_fov, redact
from reidstream.pipeline.types import Intrinsics, Modality

W, H, N, FPS = 64, 48, 8, 10.0


def bgr(n: int) -> np.ndarray:
    """Frame n: B = 20, G = 30 n, R = 200 (flat colours survive MJPG nearly unchanged)."""
    img = np.empty((H, W, 3), np.uint8)
    img[...] = (20, 30 * n, 200)
    return img


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    assert writer.isOpened()
    for n in range(N):
        writer.write(bgr(n))
    writer.release()
    return path


def test_rgb_in_order_converted_from_bgr_until_end_of_file(video):
    with OpenCVSource(video, "rgb") as src:
        assert src.modalities == (Modality.RGB,) and src.camera_id == "clip" and not src.live
        frames = [a.frame for a in src]
    assert len(frames) == N and [f.index for f in frames] == list(range(N))
    assert [f.timestamp for f in frames] == pytest.approx([n / FPS for n in range(N)], abs=1e-3)
    for n, f in enumerate(frames):
        assert f.rgb.dtype == np.uint8 and f.rgb.shape == (H, W, 3)
        r, g, b = f.rgb.reshape(-1, 3).mean(axis=0)
        assert (r, g, b) == pytest.approx((200, 30 * n, 20), abs=6)  # RGB order (the codec is lossy)
        assert f.intrinsics == pinhole_from_fov(W, H, 60.0)
    assert f.intrinsics.fx == pytest.approx((W / 2) / math.tan(math.radians(30)))


def test_ir_and_thermal_are_grey(video):
    with OpenCVSource(video, "ir", camera_id="ir0", max_frames=3) as src:
        frames = [a.frame for a in src]
    assert len(frames) == 3 and frames[0].camera_id == "ir0" and frames[0].modalities == (Modality.IR,)
    for n, f in enumerate(frames):
        assert f.ir.dtype == np.uint8 and f.ir.shape == (H, W)
        assert f.ir.mean() == pytest.approx(0.299 * 200 + 0.587 * 30 * n + 0.114 * 20, abs=6)
    k = Intrinsics(W, H, 40.0, 40.0, 32.0, 24.0)
    with OpenCVSource(video, "thermal", intrinsics=k) as src:
        f = next(iter(src)).frame
    assert f.thermal.dtype == np.uint8 and f.intrinsics == k


def test_sixteen_bit_frames(video):
    src = OpenCVSource(video, "thermal", thermal_format="celsius")
    assert src.raw
    flat = np.frombuffer(np.full(W * H, 29315, "<u2").tobytes(), np.uint8).reshape(1, -1)  # Y16 as a byte buffer
    np.testing.assert_array_equal(src._as_16bit(flat), np.full((H, W), 29315, np.uint16))
    celsius = src._image(flat, 0)
    assert celsius.dtype == np.float32 and celsius == pytest.approx(np.full((H, W), 20.0), abs=1e-3)
    with pytest.raises(SourceError, match="Y16"):
        src._image(bgr(0), 0)  # an 8-bit camera asked for radiometric frames
    src.close()
    ir = OpenCVSource(video, "ir", raw=True)
    assert ir._image(np.full((H, W), 1234, np.uint16), 0).dtype == np.uint16
    ir.close()


def test_errors_and_live_read_failure(video, tmp_path):
    with pytest.raises(SourceError, match="nope.avi"):
        OpenCVSource(tmp_path / "nope.avi", "rgb")
    with pytest.raises(ValueError, match="modality"):
        OpenCVSource(video, "depth")
    with pytest.raises(ValueError, match="thermal_format"):
        OpenCVSource(video, "thermal", thermal_format="kelvin")
    with pytest.raises(SourceError, match="intrinsics"):
        list(OpenCVSource(video, "rgb", intrinsics=Intrinsics(32, 24, 30.0, 30.0, 16.0, 12.0)))
    src = OpenCVSource(video, "rgb")
    src.live = True  # a camera that stops delivering: the reconnect wrapper needs an error, not an end
    with pytest.raises(SourceError, match="read failed after 8 frames"):
        list(src)
    src.close()
    src.close()
    assert list(src) == []


def test_uri_kinds():
    assert redact("rtsp://user:secret@cam.local:554/live") == "rtsp://***@cam.local:554/live"
    assert redact("/data/clip.avi") == "/data/clip.avi"
    assert OpenCVSource._target(2)[1:] == (cv2.CAP_ANY, True, "camera 2", "cam2")
    assert OpenCVSource._target("/dev/video4")[1:] == (cv2.CAP_V4L2, True, "camera /dev/video4", "video4")
    _, _, live, where, cid = OpenCVSource._target("rtsp://user:secret@cam.local/live")
    assert live and "secret" not in where and cid == "cam.local"
