"""RealSenseSource playing back .db3 files recorded by pyrealsense2 itself from a software device."""

from __future__ import annotations

import time

import numpy as np
import pytest

rs = pytest.importorskip("pyrealsense2", reason="needs pyrealsense2 (pip install pyrealsense2; "
                                                "Linux: apt-get install libusb-1.0-0)")

from reidstream.pipeline.sources import SourceError  # noqa: E402
from reidstream.pipeline.sources.realsense import RealSenseSource, depth_to_mm, list_realsense_devices  # noqa: E402
from reidstream.pipeline.types import Alignment, Intrinsics, Modality  # noqa: E402

pytestmark = pytest.mark.realsense

T0_MS, PERIOD_MS = 1000.0, 33.333
COLOR = Intrinsics(64, 48, 50.0, 50.0, 31.5, 23.5, (0.02, -0.01, 0.001, 0.0005, 0.0))
DEPTH = Intrinsics(32, 24, 25.0, 25.0, 15.5, 11.5)  # same field of view as colour, half the resolution


def close_to(a: Intrinsics, b: Intrinsics) -> bool:
    """Equal up to float32 rounding (librealsense stores intrinsics as float)."""
    flat = [(a.width, a.height, a.fx, a.fy, a.cx, a.cy, *a.distortion) for a in (a, b)]
    return len(flat[0]) == len(flat[1]) and flat[0] == pytest.approx(flat[1], rel=1e-6)


def _rs_intrinsics(i: Intrinsics):
    out = rs.intrinsics()
    out.width, out.height, out.fx, out.fy, out.ppx, out.ppy = i.width, i.height, i.fx, i.fy, i.cx, i.cy
    out.model = rs.distortion.brown_conrady
    out.coeffs = list(i.distortion or (0.0,) * 5)
    return out


def _stream(kind, index: int, uid: int, fmt, bpp: int, i: Intrinsics):
    s = rs.video_stream()
    s.type, s.index, s.uid, s.fmt, s.bpp, s.fps = kind, index, uid, fmt, bpp, 30
    s.width, s.height, s.intrinsics = i.width, i.height, _rs_intrinsics(i)
    return s


def colour_image(n: int) -> np.ndarray:
    """R = frame number, G = 3x, B = 255 - 5y: any channel swap or flip shows."""
    y, x = np.mgrid[0:COLOR.height, 0:COLOR.width]
    return np.stack([np.full_like(x, n), 3 * x, 255 - 5 * y], axis=-1).astype(np.uint8)


def depth_metres(n: int) -> np.ndarray:
    """Left half 1 m, right half 2 m (+1 mm per frame), at the depth resolution."""
    d = np.full((DEPTH.height, DEPTH.width), 1.0 + n * 0.001)
    d[:, DEPTH.width // 2:] += 1.0
    return d


def ir_image(n: int) -> np.ndarray:
    y, x = np.mgrid[0:DEPTH.height, 0:DEPTH.width]
    return ((7 * x + y + n) % 256).astype(np.uint8)


def record(path, frames: int = 6, depth_units: float = 0.0001, ir: bool = False, skip_colour=()) -> str:
    """Records ``frames`` captures of colour (rgb8), depth (z16) and optionally IR 1 (y8) to ``path``."""
    dev = rs.software_device()
    dev.register_info(rs.camera_info.name, "Software D4xx")
    dev.register_info(rs.camera_info.serial_number, "0001")
    stereo, rgb = dev.add_sensor("Stereo Module"), dev.add_sensor("RGB Camera")
    stereo.add_read_only_option(rs.option.depth_units, depth_units)
    dp = stereo.add_video_stream(_stream(rs.stream.depth, 0, 0, rs.format.z16, 2, DEPTH))
    cp = rgb.add_video_stream(_stream(rs.stream.color, 0, 1, rs.format.rgb8, 3, COLOR))
    identity = rs.extrinsics()
    identity.rotation, identity.translation = [1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0]
    dp.register_extrinsics_to(cp, identity)
    stereo_profiles = [dp]
    if ir:
        ip = stereo.add_video_stream(_stream(rs.stream.infrared, 1, 2, rs.format.y8, 1, DEPTH))
        dp.register_extrinsics_to(ip, identity)
        stereo_profiles.append(ip)
    recorder = rs.recorder(str(path), dev)
    sink = rs.frame_queue(1000)
    stereo.open(stereo_profiles)
    rgb.open(cp)
    stereo.start(sink)
    rgb.start(sink)
    for n in range(frames):
        images = [(stereo, dp, np.rint(depth_metres(n) / depth_units).astype(np.uint16), 2)]
        if ir:
            images.append((stereo, stereo_profiles[1], ir_image(n), 1))
        if n not in skip_colour:
            images.insert(0, (rgb, cp, colour_image(n), 3))
        for sensor, profile, pixels, bpp in images:
            f = rs.software_video_frame()
            f.pixels, f.bpp, f.stride = pixels, bpp, pixels.shape[1] * bpp
            f.timestamp, f.domain, f.frame_number = T0_MS + n * PERIOD_MS, rs.timestamp_domain.hardware_clock, n
            f.profile = profile.as_video_stream_profile()
            if profile is dp:
                f.depth_units = depth_units
            sensor.on_video_frame(f)
    for sensor in (stereo, rgb):
        sensor.stop()
        sensor.close()
    del recorder  # closes the file
    return str(path)


@pytest.mark.parametrize("units", [0.001, 0.0001])
def test_playback_in_order_rgb_exact_depth_aligned_in_mm(tmp_path, units):
    path = record(tmp_path / "rec.db3", frames=6, depth_units=units)
    with RealSenseSource(playback=path, streams=("rgb", "depth")) as src:
        assert src.modalities == (Modality.RGB, Modality.DEPTH) and src.camera_id == "rec"
        frames = [a.frame for a in src]
    assert [f.index for f in frames] == list(range(6))
    assert [f.timestamp for f in frames] == pytest.approx([(T0_MS + n * PERIOD_MS) / 1000 for n in range(6)])
    for n, f in enumerate(frames):
        np.testing.assert_array_equal(f.rgb, colour_image(n))
        assert f.alignment is Alignment.ALIGNED_TO_COLOR and close_to(f.intrinsics, COLOR)
        assert f.depth.dtype == np.uint16 and f.depth.shape == (48, 64)  # resampled to the colour geometry
        # colour column u sees depth column ~u/2: the 1 m / 2 m step lies at u = 32
        np.testing.assert_array_equal(f.depth[8:40, 4:28], 1000 + n)
        np.testing.assert_array_equal(f.depth[8:40, 36:60], 2000 + n)
        assert f.depth_metres()[20, 10] == pytest.approx(1.0 + n * 0.001)


def test_ir_stays_in_depth_geometry_and_frame_is_unaligned(tmp_path):
    path = record(tmp_path / "ir.db3", frames=4, ir=True)
    with RealSenseSource(playback=path) as src:
        frames = [a.frame for a in src]
    assert len(frames) == 4
    for n, f in enumerate(frames):
        assert f.modalities == (Modality.RGB, Modality.DEPTH, Modality.IR)
        assert f.alignment is Alignment.UNALIGNED
        assert set(f.stream_intrinsics) == {Modality.DEPTH, Modality.IR}
        assert close_to(f.stream_intrinsics[Modality.DEPTH], COLOR) and f.stream_intrinsics[Modality.IR] == DEPTH
        assert f.depth.shape == (48, 64) and f.depth[20, 10] == 1000 + n
        np.testing.assert_array_equal(f.ir, ir_image(n))

    with RealSenseSource(playback=path, align_to_color=False) as src:
        f = next(iter(src)).frame
    assert f.alignment is Alignment.UNALIGNED and f.stream_intrinsics == {Modality.DEPTH: DEPTH, Modality.IR: DEPTH}
    np.testing.assert_array_equal(f.depth, np.rint(depth_metres(0) * 1000).astype(np.uint16))

    with RealSenseSource(playback=path, streams=("depth", "ir")) as src:
        f = next(iter(src)).frame
    assert f.alignment is Alignment.ALIGNED_TO_COLOR and f.intrinsics == DEPTH and f.rgb is None
    assert f.stream_intrinsics == {}


def test_max_frames_close_and_slow_consumer(tmp_path):
    path = record(tmp_path / "long.db3", frames=40)
    with RealSenseSource(playback=path, streams=("rgb", "depth"), max_frames=3) as src:
        assert [a.frame.index for a in src] == [0, 1, 2]
    src = RealSenseSource(playback=path, streams=("rgb", "depth"))
    got = []
    for a in src:
        time.sleep(0.01)  # a consumer slower than the file: nothing may be dropped
        got.append(int(a.frame.rgb[0, 0, 0]))
    assert got == list(range(40)) and src.skipped == 0
    src.close()
    src.close()
    assert list(src) == []


def test_capture_missing_a_stream_is_skipped(tmp_path):
    path = record(tmp_path / "gap.db3", frames=6, skip_colour=(2,))
    with RealSenseSource(playback=path, streams=("rgb", "depth")) as src:
        got = [int(a.frame.rgb[0, 0, 0]) for a in src]
    assert got == [0, 1, 3, 4, 5] and src.skipped == 1


def test_clear_errors(tmp_path):
    path = record(tmp_path / "plain.db3", frames=2)
    with pytest.raises(SourceError, match=r"plain\.db3.*\['ir'\].*source\.streams=\[rgb,depth\]"):
        RealSenseSource(playback=path, streams=("rgb", "depth", "ir"))
    with pytest.raises(SourceError, match="missing.db3"):
        RealSenseSource(playback=tmp_path / "missing.db3")
    (tmp_path / "x.mp4").write_bytes(b"0")
    with pytest.raises(SourceError, match=r"\.bag or \.db3"):
        RealSenseSource(playback=tmp_path / "x.mp4")
    (tmp_path / "bad.db3").write_bytes(b"not a database")
    with pytest.raises(SourceError, match="bad.db3"):
        RealSenseSource(playback=tmp_path / "bad.db3")
    with pytest.raises(ValueError, match="streams"):
        RealSenseSource(playback=path, streams=("rgb", "thermal"))


def test_colour_depth_recording_without_ir_plays_without_choosing_streams(tmp_path):
    path = record(tmp_path / "noir.db3", frames=5)
    with RealSenseSource(playback=path) as src:
        assert src.modalities == (Modality.RGB, Modality.DEPTH)
        frames = [a.frame for a in src]
    assert [f.index for f in frames] == list(range(5))
    for n, f in enumerate(frames):
        assert f.modalities == (Modality.RGB, Modality.DEPTH) and f.alignment is Alignment.ALIGNED_TO_COLOR
        np.testing.assert_array_equal(f.rgb, colour_image(n))
        assert f.depth.shape == (48, 64) and f.depth[20, 10] == 1000 + n


def test_reid_stream_config_plays_the_recording_and_honours_source_streams(tmp_path):
    """The command line path: --replay F.db3 (camera realsense, uri F), with and without source.streams."""
    from reidstream.pipeline.app.cli import stream_config_from_args, stream_parser
    from reidstream.pipeline.config import parse_args_with_overrides
    from reidstream.pipeline.app.sources import open_stream_source

    path = record(tmp_path / "desk.db3", frames=4)

    def frames(*overrides):
        cfg = stream_config_from_args(parse_args_with_overrides(stream_parser(), ["--replay", path, *overrides]))
        src, fps = open_stream_source(cfg)
        try:
            return [a.frame for a in src], fps
        finally:
            src.close()

    got, fps = frames()
    assert len(got) == 4 and all(f.modalities == (Modality.RGB, Modality.DEPTH) for f in got)
    assert fps == pytest.approx(30.0)
    got, _ = frames("source.streams=[depth]")
    assert len(got) == 4 and all(f.modalities == (Modality.DEPTH,) and f.rgb is None for f in got)
    with pytest.raises(SourceError, match=r"desk\.db3.*\['ir'\].*source\.streams="):
        frames("source.streams=[rgb,depth,ir]")


def test_depth_unit_conversion_and_device_list():
    raw = np.array([[0, 10000, 12345, 65535]], np.uint16)
    np.testing.assert_array_equal(depth_to_mm(raw, 0.0001), [[0, 1000, 1234, 6554]])
    np.testing.assert_array_equal(depth_to_mm(raw, 0.001), raw)
    np.testing.assert_array_equal(depth_to_mm(np.array([[40000]], np.uint16), 0.002), [[0]])  # 80 m: no depth
    devices = list_realsense_devices()  # none attached here; on a machine with cameras, one dict each
    assert all({"name", "serial", "firmware"} <= set(d) for d in devices)
