"""Reconnect, buffering and the camera registry; Kinect / OpenNI sources without their hardware libraries."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import types

import cv2
import numpy as np
import pytest

from reidstream.pipeline.sources import SourceError
from reidstream.pipeline.sources.base import AnnotatedFrame
from reidstream.pipeline.sources.live import CAMERAS, BufferedSource, ReconnectingSource, open_camera, open_from_config
from reidstream.pipeline.types import Alignment, Frame, Modality

RGB = np.zeros((4, 6, 3), np.uint8)


class FakeSource:
    """Yields ``frames`` frames indexed from 0, then raises ``error`` (or ends); ``block`` makes each read wait."""

    def __init__(self, frames: int | None, error: Exception | None = None, camera_id: str = "fake",
                 delay: float = 0.0) -> None:
        self.frames, self.error, self.camera_id, self.delay = frames, error, camera_id, delay
        self.modalities = (Modality.RGB,)
        self.closed = threading.Event()
        self.finished = threading.Event()

    def __iter__(self):
        i = 0
        while not self.closed.is_set() and (self.frames is None or i < self.frames):
            if self.delay:
                self.closed.wait(self.delay)
            yield AnnotatedFrame(Frame(rgb=RGB, index=i, timestamp=100.0 + i, camera_id=self.camera_id))
            i += 1
        self.finished.set()
        if self.error is not None and not self.closed.is_set():
            raise self.error

    def close(self):
        self.closed.set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def recorder():
    events, sleeps = [], []
    return events, sleeps, (lambda e, info: events.append((e, info))), sleeps.append


def test_reconnect_keeps_every_frame_with_increasing_indices():
    opened = []

    def factory():
        first_two = len(opened) < 2  # the first two connections break after 3 frames, the third ends
        opened.append(FakeSource(3 if first_two else 4, SourceError(f"cable {len(opened) + 1}") if first_two else None))
        return opened[-1]

    events, sleeps, on_event, sleep = recorder()
    with ReconnectingSource(factory, name="cam", on_event=on_event, sleep=sleep) as src:
        frames = [a.frame for a in src]
    assert len(frames) == 10 and [f.index for f in frames] == list(range(10))
    assert [f.timestamp for f in frames] == [100, 101, 102] * 3 + [103]  # untouched apart from the index
    assert [e for e, _ in events] == ["disconnected", "reconnecting", "reconnected"] * 2
    assert events[0][1] == {"name": "cam", "error": "cable 1", "phase": "read", "frames": 3}
    assert sleeps == [0.5, 0.5]  # the back-off restarts once a reconnect delivered frames
    assert all(s.closed.is_set() for s in opened) and src.reconnects == 2


def test_backoff_grows_while_opening_fails_and_gives_up_after_max_retries():
    tries = []

    def flaky_open():
        tries.append(1)
        if len(tries) <= 3:
            raise SourceError(f"no device (try {len(tries)})")
        return FakeSource(2, camera_id="cam7")

    events, sleeps, on_event, sleep = recorder()
    src = ReconnectingSource(flaky_open, name="front", on_event=on_event, sleep=sleep)
    assert [a.frame.index for a in src] == [0, 1] and src.camera_id == "cam7"
    assert sleeps == [0.5, 1.0, 2.0] and events[0][1]["phase"] == "open"
    assert [info["attempt"] for e, info in events if e == "reconnecting"] == [1, 2, 3]

    def dead():
        raise SourceError("unplugged")

    events, sleeps, on_event, sleep = recorder()
    src = ReconnectingSource(dead, name="front", backoff=(1, 3), max_retries=3, on_event=on_event, sleep=sleep)
    with pytest.raises(SourceError, match=r"front: gave up after 3 reconnect attempts; last error: unplugged"):
        list(src)
    assert sleeps == [1.0, 3.0, 3.0]
    with pytest.raises(SourceError, match="after 0 reconnect"):
        list(ReconnectingSource(dead, name="front", max_retries=0, sleep=sleep))


def test_live_end_is_a_disconnect_and_other_errors_propagate():
    opened = []

    def factory():
        opened.append(FakeSource(2))
        return opened[-1]

    events, sleeps, on_event, sleep = recorder()
    src = ReconnectingSource(factory, name="cam", live=True, on_event=on_event, sleep=sleep)
    got = []
    for a in src:
        got.append(a.frame.index)
        if len(got) == 5:
            src.close()
    assert got == [0, 1, 2, 3, 4] and events[0][1]["phase"] == "end"
    assert [a.frame.index for a in ReconnectingSource(factory, name="cam", sleep=sleep)] == [0, 1]  # not live

    def broken():
        return FakeSource(1, ValueError("bug"))

    with pytest.raises(ValueError, match="bug"):
        list(ReconnectingSource(broken, name="cam", sleep=sleep))


def _rest_after_producer_finished(buf: BufferedSource, inner: FakeSource):
    it = iter(buf)
    first = next(it).frame.index
    assert inner.finished.wait(10)
    return first, [a.frame.index for a in it]


def test_buffer_drops_by_policy_for_a_slow_consumer():
    inner = FakeSource(20)
    events = []
    buf = BufferedSource(inner, maxsize=4, on_event=lambda e, info: events.append((e, info)))
    first, rest = _rest_after_producer_finished(buf, inner)
    got = [first] + rest  # first: whichever frame was oldest when the consumer woke
    assert got[-4:] == [16, 17, 18, 19] and got == sorted(got) and buf.dropped == 20 - len(got)
    assert len(events) == buf.dropped and events[-1][0] == "dropped" and events[-1][1]["dropped"] == buf.dropped

    inner = FakeSource(20)
    buf = BufferedSource(inner, maxsize=4, policy="drop_newest")
    first, rest = _rest_after_producer_finished(buf, inner)
    got = [first] + rest
    assert first == 0 and got == sorted(got) and len(got) + buf.dropped == 20 and buf.dropped >= 20 - 1 - 4


def test_buffer_block_never_drops_and_reraises_reader_errors():
    inner = FakeSource(30, SourceError("cable pulled"))
    buf = BufferedSource(inner, maxsize=2, policy="block")
    got = []
    with pytest.raises(SourceError, match="cable pulled"):
        for a in buf:
            time.sleep(0.001)
            got.append(a.frame.index)
    assert got == list(range(30)) and buf.dropped == 0
    assert buf.camera_id == "fake" and buf.modalities == (Modality.RGB,)
    with pytest.raises(ValueError, match="policy"):
        BufferedSource(inner, policy="newest")


@pytest.mark.parametrize("policy, delay", [("block", 0.0), ("drop_oldest", 60.0)])
def test_buffer_close_stops_the_reader(policy, delay):
    # block: the reader waits on a full queue; delay: the reader waits inside the camera
    inner = FakeSource(None, delay=delay)
    buf = BufferedSource(inner, maxsize=2, policy=policy)
    it = iter(buf)
    if delay:
        buf.start()
        time.sleep(0.05)  # let the reader enter the camera's wait (either way close must stop it)
    else:
        next(it)
    buf.close()
    assert not buf._thread.is_alive() and inner.closed.is_set()
    assert list(it) == []


def test_open_camera_registry(tmp_path, sim_config):
    assert set(CAMERAS) == {"realsense", "kinect", "openni", "ir", "thermal", "webcam", "video", "sim", "recording"}
    with pytest.raises(ValueError, match="unknown camera kind 'lidar'"):
        open_camera("lidar")
    with open_camera("sim", config={"camera": {"width": 64, "height": 48}, "crowd": {"people": 1, "population": 4}},
                     max_frames=2) as src:
        frames = [a.frame for a in src]
    assert len(frames) == 2 and frames[0].size == (64, 48) and frames[1].index == 1
    with pytest.raises(SourceError, match="not a reid-stream recording"):
        open_camera("recording", path=tmp_path)
    with pytest.raises(ValueError, match="needs uri"):
        open_camera("thermal")
    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    for _ in range(3):
        writer.write(np.full((24, 32, 3), 90, np.uint8))
    writer.release()
    with open_camera("ir", uri=str(path)) as src:
        assert [a.frame.ir.shape for a in src] == [(24, 32)] * 3

    from reidstream.pipeline.app.config import SourceConfig
    with open_from_config(SourceConfig(camera="video", uri=str(path), max_frames=2)) as src:
        assert [a.frame.index for a in src] == [0, 1] and not src.realtime
    with open_from_config(SourceConfig(camera="sim", max_frames=1)) as src:
        assert src.realtime and len(list(src)) == 1


def test_importing_sources_loads_no_hardware_library():
    code = ("import sys, reidstream.pipeline.sources, reidstream.pipeline.sources.live, "
            "reidstream.pipeline.sources.realsense, reidstream.pipeline.sources.kinect, "
            "reidstream.pipeline.sources.opencv_camera; "
            "print(sorted(m for m in ('pyrealsense2', 'pyk4a') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_kinect_without_pyk4a_and_opencv_without_openni(monkeypatch):
    from reidstream.pipeline.sources.kinect import AzureKinectSource, OpenNISource
    monkeypatch.setitem(sys.modules, "pyk4a", None)  # import pyk4a -> ImportError
    with pytest.raises(SourceError, match=r"Azure Kinect 0: pyk4a cannot be imported.*pip install pyk4a"):
        AzureKinectSource()
    with pytest.raises(SourceError, match="pyk4a"):
        open_camera("kinect", playback="walk.mkv")
    monkeypatch.setattr(cv2.videoio_registry, "hasBackend", lambda api: False)
    with pytest.raises(SourceError, match=r"OpenNI2 device 0: this OpenCV build .* has no OpenNI2 backend"):
        OpenNISource(0)
    monkeypatch.undo()
    with pytest.raises(SourceError, match="OpenNI2"):  # this build either lacks OpenNI2 or has no device
        OpenNISource(0)


def _fake_pyk4a(captures: list) -> types.ModuleType:
    """The slice of pyk4a's API AzureKinectSource uses, playing ``captures`` back."""
    k4a = types.ModuleType("pyk4a")
    k4a.K4AException = type("K4AException", (Exception,), {})
    k4a.ImageFormat = types.SimpleNamespace(COLOR_MJPG=0, COLOR_BGRA32=3)
    k4a.CalibrationType = types.SimpleNamespace(DEPTH=0, COLOR=1)

    class Calibration:
        def get_camera_matrix(self, kind):
            f = 50.0 if kind == 1 else 25.0
            return np.array([[f, 0, 31.5 if kind == 1 else 15.5], [0, f, 23.5 if kind == 1 else 11.5], [0, 0, 1]])

        def get_distortion_coefficients(self, kind):
            return np.array([0.1, 0.01, 0, 0, 0, 0, 0, 0]) if kind == 1 else np.zeros(8)

    class PyK4APlayback:
        def __init__(self, path):
            self.path, self._left = path, list(captures)

        def open(self):
            pass

        configuration = {"color_track_enabled": True, "depth_track_enabled": True, "ir_track_enabled": True,
                         "color_format": 3, "camera_fps": 2}
        calibration = Calibration()

        def get_next_capture(self):
            if not self._left:
                raise EOFError()
            return self._left.pop(0)

        def close(self):
            pass

    k4a.PyK4APlayback = PyK4APlayback
    return k4a


def test_azure_kinect_playback_logic_with_a_fake_pyk4a(monkeypatch, tmp_path):
    from reidstream.pipeline.sources.kinect import AzureKinectSource

    def capture(n, colour=True):
        bgra = np.zeros((48, 64, 4), np.uint8)
        bgra[..., 0], bgra[..., 2] = 10, n  # blue 10, red n
        return types.SimpleNamespace(
            color=bgra if colour else None, depth=np.full((24, 32), 1000 + n, np.uint16),
            ir=np.full((24, 32), 7, np.uint16), transformed_depth=np.full((48, 64), 1000 + n, np.uint16),
            transformed_ir=np.full((48, 64), 7, np.uint16), color_timestamp_usec=33333 * n,
            depth_timestamp_usec=33333 * n)

    monkeypatch.setitem(sys.modules, "pyk4a", _fake_pyk4a([capture(0), capture(1, colour=False), capture(2)]))
    (tmp_path / "walk.mkv").write_bytes(b"")
    with AzureKinectSource(playback=tmp_path / "walk.mkv") as src:
        frames = [a.frame for a in src]
    assert [f.index for f in frames] == [0, 1] and src.skipped == 1 and src.camera_id == "walk"
    f = frames[1]
    assert f.rgb[0, 0].tolist() == [2, 0, 10] and f.timestamp == pytest.approx(0.066666)
    assert f.alignment is Alignment.ALIGNED_TO_COLOR and f.depth[0, 0] == 1002 and f.ir.shape == (48, 64)
    assert f.intrinsics.fx == 50.0 and f.intrinsics.distortion == (0.1, 0.01, 0, 0, 0, 0, 0, 0)
    with AzureKinectSource(playback=tmp_path / "walk.mkv", align_to_color=False, max_frames=1) as src:
        f = next(iter(src)).frame
    assert f.alignment is Alignment.UNALIGNED and f.depth.shape == (24, 32)
    assert f.stream_intrinsics[Modality.IR].fx == 25.0


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest", "block"])
def test_buffer_counts_every_frame_read_as_delivered_or_dropped_by_reason(policy):
    """A slow consumer that stops early: every frame read is delivered, dropped (buffer full) or left at stop."""
    inner = FakeSource(40)
    buf = BufferedSource(inner, maxsize=2, policy=policy)
    delivered = 0
    for _ in buf:
        delivered += 1
        time.sleep(0.002)
        if delivered == 10:
            break
    buf.close()
    c = buf.counts()
    assert c["delivered"] == delivered >= 2
    assert c["read"] == c["delivered"] + sum(c["dropped"].values()) and c["read"] >= delivered
    assert c["dropped"]["realtime"] == 0
    if policy == "block":
        assert delivered == 10 and c["dropped"]["buffer_full"] == 0 and c["dropped"]["at_stop"] <= 3
    else:
        assert c["dropped"]["buffer_full"] > 0
