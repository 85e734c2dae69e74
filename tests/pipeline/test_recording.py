"""The recording format: round trips, cut-off recordings, errors and ``record()``."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from reidstream.pipeline.recording import INDEX_FILE, META_FILE, RecordingWriter, read_meta, record
from reidstream.pipeline.sources.base import AnnotatedFrame, Source, SourceError
from reidstream.pipeline.sources.recording import RecordingSource, RecordingWarning
from reidstream.pipeline.types import Alignment, DepthUnit, Frame, Intrinsics, Modality, PersonAnnotation

W, H = 64, 48
K = Intrinsics(W, H, 60.0, 61.0, 31.5, 23.5, (0.1, -0.05, 0.001, 0.002, 0.0))
ALL = (Modality.RGB, Modality.DEPTH, Modality.IR, Modality.THERMAL)


def make_frame(i: int, ir=np.uint8, thermal=np.uint16, depth_unit=DepthUnit.MILLIMETRE) -> AnnotatedFrame:
    rng = np.random.default_rng(i)
    depth = rng.integers(0, 8001, (H, W)).astype(np.uint16)
    depth[:5, :7] = 0  # no-depth pixels
    if depth_unit is DepthUnit.METRE:
        depth = depth.astype(np.float32) / 1000
    if np.dtype(thermal) == np.float32:
        th = rng.normal(30.0, 5.0, (H, W)).astype(np.float32)
        th[0, 0] = np.nan
    else:
        th = rng.integers(0, np.iinfo(thermal).max, (H, W), endpoint=True).astype(thermal)
    frame = Frame(rgb=rng.integers(0, 256, (H, W, 3), dtype=np.uint8), depth=depth,
                  ir=rng.integers(0, np.iinfo(ir).max, (H, W), endpoint=True).astype(ir), thermal=th,
                  intrinsics=K, timestamp=100.0 + i / 30 + 1e-7, index=i, camera_id="camA", depth_unit=depth_unit)
    people = (PersonAnnotation(3, (1.5, 2.25, 20.0, 40.0), 0.75, 3.5), PersonAnnotation(7, (30, 5, 60, 47), 1.0))
    return AnnotatedFrame(frame, people[: i % 3], has_ground_truth=True)


def write(path, frames, **kw) -> None:
    kw.setdefault("modalities", ALL)
    with RecordingWriter(path, camera_id="camA", intrinsics=K, fps=30, **kw) as w:
        for af in frames:
            w.write(af)


def replay(path, **kw) -> list[AnnotatedFrame]:
    with RecordingSource(path, **kw) as src:
        return list(src)


@pytest.mark.parametrize("ir,thermal", [(np.uint8, np.uint16), (np.uint16, np.float32), (np.uint8, np.uint8)])
def test_round_trip_is_bit_exact(tmp_path, ir, thermal):
    frames = [make_frame(i, ir, thermal) for i in range(4)]
    write(tmp_path / "rec", frames, source="unit test")
    out = replay(tmp_path / "rec")
    assert len(out) == 4
    for a, b in zip(frames, out):
        for m in ALL:
            assert b.frame.image(m).dtype == a.frame.image(m).dtype
            assert np.array_equal(b.frame.image(m), a.frame.image(m), equal_nan=True), m
        assert b.frame.timestamp == a.frame.timestamp and b.frame.index == a.frame.index
        assert b.frame.intrinsics == K and b.frame.camera_id == "camA"
        assert b.annotations == a.annotations and b.has_ground_truth
    meta = read_meta(tmp_path / "rec")
    assert meta.modalities == ALL and meta.fps == 30.0 and meta.source == "unit test"
    assert meta.ir_bits == np.iinfo(ir).bits
    assert meta.thermal_encoding == {np.uint8: "uint8", np.uint16: "uint16_centikelvin",
                                     np.float32: "float32_celsius"}[thermal]


def test_depth_in_metres_is_stored_as_millimetres(tmp_path):
    frames = [make_frame(i, depth_unit=DepthUnit.METRE) for i in range(2)]
    frames[0].frame.depth[1, 1] = np.nan
    write(tmp_path / "rec", frames)
    out = replay(tmp_path / "rec")
    for a, b in zip(frames, out):
        assert b.frame.depth_unit is DepthUnit.MILLIMETRE and b.frame.depth.dtype == np.uint16
        want = np.nan_to_num(np.rint(a.frame.depth * 1000)).astype(np.uint16)
        assert np.array_equal(b.frame.depth, want)
    assert out[0].frame.depth[1, 1] == 0 and out[0].frame.depth[0, 0] == 0


def test_unaligned_streams_keep_their_sizes_and_intrinsics(tmp_path):
    kd = Intrinsics(32, 24, 30.0, 30.0, 15.5, 11.5)
    frames = [AnnotatedFrame(Frame(rgb=np.full((H, W, 3), i, np.uint8), depth=np.full((24, 32), 1000 + i, np.uint16),
                                   intrinsics=K, index=i, alignment=Alignment.UNALIGNED,
                                   stream_intrinsics={Modality.DEPTH: kd})) for i in range(2)]
    write(tmp_path / "rec", frames, modalities=("rgb", "depth"), alignment="unaligned",
          stream_intrinsics={"depth": kd})
    out = replay(tmp_path / "rec")
    assert [f.frame.depth[0, 0] for f in out] == [1000, 1001]
    assert out[1].frame.stream_intrinsics == {Modality.DEPTH: kd} and out[1].frame.alignment is Alignment.UNALIGNED
    assert out[1].frame.depth.shape == (24, 32) and out[1].frame.rgb.shape == (H, W, 3)


def test_jpeg_colour_is_declared_and_close(tmp_path):
    frame = Frame(rgb=np.tile(np.linspace(0, 255, W, dtype=np.uint8)[None, :, None], (H, 1, 3)), intrinsics=K)
    write(tmp_path / "rec", [frame], modalities=("rgb",), colour_format="jpg")
    assert read_meta(tmp_path / "rec").colour_format == "jpg"
    assert (tmp_path / "rec" / "rgb" / "000000.jpg").is_file()
    out = replay(tmp_path / "rec")
    assert np.abs(out[0].frame.rgb.astype(int) - frame.rgb).max() <= 8


def test_unclosed_writer_is_readable_and_leaves_no_temp_files(tmp_path):
    w = RecordingWriter(tmp_path / "rec", camera_id="camA", intrinsics=K, modalities=ALL)
    for i in range(3):
        w.write(make_frame(i))
    # As if the process died here: nothing closed, yet every written frame replays.
    assert [f.frame.index for f in replay(tmp_path / "rec")] == [0, 1, 2]
    assert not list((tmp_path / "rec").rglob("*.tmp"))
    w.close()
    w.close()  # idempotent


@pytest.fixture
def rec5(tmp_path):
    path = tmp_path / "rec"
    write(path, [make_frame(i) for i in range(5)])
    return path


def test_index_cut_mid_line_replays_complete_frames(rec5):
    index = rec5 / INDEX_FILE
    data = index.read_bytes()
    index.write_bytes(data[: len(data) - 40])  # the last line loses its end and its newline
    with pytest.warns(RecordingWarning, match=r"line 5 is incomplete"):
        out = replay(rec5)
    assert [f.frame.index for f in out] == [0, 1, 2, 3]
    assert np.array_equal(out[3].frame.depth, make_frame(3).frame.depth)


def test_truncated_last_png_stops_at_last_complete_frame(rec5):
    png = rec5 / "depth" / "000004.png"
    png.write_bytes(png.read_bytes()[: png.stat().st_size // 2])
    src = RecordingSource(rec5)
    with pytest.warns(RecordingWarning, match=r"frame 4: depth file depth/000004.png is truncated"):
        out = list(src)
    assert [f.frame.index for f in out] == [0, 1, 2, 3]
    assert src.frame_count == 4


def test_missing_last_file_stops_at_last_complete_frame(rec5):
    (rec5 / "thermal" / "000004.png").unlink()
    src = RecordingSource(rec5)
    assert len(src) == 4
    with pytest.warns(RecordingWarning, match=r"frame 4: thermal file thermal/000004.png is missing"):
        assert [f.frame.index for f in src] == [0, 1, 2, 3]
    assert [s.index for s in src.skipped] == [4]


def test_index_lines_beyond_the_files_are_dropped(rec5):
    lines = (rec5 / INDEX_FILE).read_text().splitlines()
    extra = [json.loads(lines[-1]) for _ in range(2)]
    for k, d in enumerate(extra):
        d["index"] = 5 + k
        d["files"] = {m: f"{m}/{5 + k:06d}.png" for m in d["files"]}
    with open(rec5 / INDEX_FILE, "a") as f:
        f.writelines(json.dumps(d) + "\n" for d in extra)
    with pytest.warns(RecordingWarning, match=r"frame 5: rgb file rgb/000005.png is missing"):
        out = replay(rec5)
    assert [f.frame.index for f in out] == [0, 1, 2, 3, 4]


def test_corrupted_middle_line_is_an_error(rec5):
    lines = (rec5 / INDEX_FILE).read_text().splitlines(keepends=True)
    lines[1] = lines[1][:30] + "\n"
    (rec5 / INDEX_FILE).write_text("".join(lines))
    with pytest.raises(SourceError, match=r"frames.jsonl: line 2 is corrupted"):
        RecordingSource(rec5)


def test_missing_or_unknown_metadata_is_an_error(rec5, tmp_path):
    meta = json.loads((rec5 / META_FILE).read_text())
    (rec5 / META_FILE).write_text(json.dumps(dict(meta, version=99)))
    with pytest.raises(SourceError, match=r"recording.json: unsupported recording version 99"):
        RecordingSource(rec5)
    (rec5 / META_FILE).write_text("{not json")
    with pytest.raises(SourceError, match=r"recording.json: unreadable"):
        read_meta(rec5)
    (rec5 / META_FILE).write_text(json.dumps(dict(meta, format="something-else")))
    with pytest.raises(SourceError, match=r"not a reid-stream recording"):
        read_meta(rec5)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"recording.json: missing"):
        RecordingSource(tmp_path / "empty")


def test_writer_rejects_mismatched_frames(tmp_path):
    with RecordingWriter(tmp_path / "rec", camera_id="camA", intrinsics=K, modalities=ALL) as w:
        w.write(make_frame(0))
        small = Frame(rgb=np.zeros((24, 32, 3), np.uint8), depth=np.zeros((24, 32), np.uint16),
                      ir=np.zeros((24, 32), np.uint8), thermal=np.zeros((24, 32), np.uint16), index=1)
        with pytest.raises(ValueError, match=r"frame 1: expected a rgb image of 64x48, got 32x24"):
            w.write(small)
        no_ir = Frame(rgb=np.zeros((H, W, 3), np.uint8), depth=np.zeros((H, W), np.uint16),
                      thermal=np.zeros((H, W), np.uint16), index=2)
        with pytest.raises(ValueError, match=r"frame 2: expected modalities \['rgb', 'depth', 'ir', 'thermal'\]"):
            w.write(no_ir)
        with pytest.raises(ValueError, match=r"frame 0: expected a frame index > 0"):
            w.write(make_frame(0))
        with pytest.raises(ValueError, match=r"frame 3: expected ir of dtype uint8"):
            w.write(make_frame(3, ir=np.uint16))
        w.write(make_frame(4))
    assert [f.frame.index for f in replay(tmp_path / "rec")] == [0, 4]


def test_writer_refuses_to_overwrite(rec5, tmp_path):
    with pytest.raises(FileExistsError, match=r"a recording already exists; pass overwrite=True"):
        write(rec5, [make_frame(0)])
    assert RecordingSource(rec5).frame_count == 5  # untouched
    write(rec5, [make_frame(0)], overwrite=True)
    assert RecordingSource(rec5).frame_count == 1
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"holds no recording"):
        write(other, [make_frame(0)], overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"


class ListSource:
    """A minimal in-test Source; raises KeyboardInterrupt after ``interrupt_after`` frames if set."""

    def __init__(self, n: int, interrupt_after: int | None = None) -> None:
        self.camera_id, self.modalities, self.fps = "camA", ALL, 30.0
        self.n, self.interrupt_after = n, interrupt_after

    def __iter__(self):
        for i in range(self.n):
            if i == self.interrupt_after:
                raise KeyboardInterrupt
            yield make_frame(i)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def test_record_drains_a_source(tmp_path):
    assert isinstance(ListSource(1), Source)
    seen: list[int] = []
    assert record(ListSource(6), tmp_path / "rec", max_frames=4, progress=seen.append) == 4
    assert seen == [1, 2, 3, 4]
    src = RecordingSource(tmp_path / "rec")
    assert isinstance(src, Source) and src.camera_id == "camA" and src.modalities == ALL
    assert src.meta.fps == 30.0 and src.meta.intrinsics == K
    out = list(src)
    assert [f.frame.index for f in out] == [0, 1, 2, 3]
    assert np.array_equal(out[2].frame.ir, make_frame(2).frame.ir) and out[2].annotations == make_frame(2).annotations


def test_record_interrupted_leaves_a_valid_recording(tmp_path):
    assert record(ListSource(10, interrupt_after=3), tmp_path / "rec") == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean stop: nothing to drop
        out = replay(tmp_path / "rec")
    assert [f.frame.index for f in out] == [0, 1, 2]


def test_playback_options(rec5):
    assert [f.frame.index for f in replay(rec5, start=2, max_frames=2)] == [2, 3]
    looped = replay(rec5, loop=True, max_frames=12)
    idx = [f.frame.index for f in looped]
    ts = [f.frame.timestamp for f in looped]
    assert len(idx) == 12 and idx[:5] == [0, 1, 2, 3, 4] and idx[5] == 5
    assert all(b > a for a, b in zip(idx, idx[1:])) and all(b > a for a, b in zip(ts, ts[1:]))
    assert np.array_equal(looped[6].frame.rgb, looped[1].frame.rgb)
    paced = replay(rec5, realtime=True, max_frames=3)  # order only; no timing assertions
    assert [f.frame.index for f in paced] == [0, 1, 2]
    with pytest.raises(TypeError):
        len(RecordingSource(rec5, loop=True))
    src = RecordingSource(rec5)
    it = iter(src)
    next(it)
    src.close()
    assert list(it) == []


class FailingSource(ListSource):
    """Yields ``fail_after`` frames, then fails the way a camera that disconnects does."""

    def __init__(self, n: int, fail_after: int) -> None:
        super().__init__(n)
        self.fail_after = fail_after

    def __iter__(self):
        for i, item in enumerate(super().__iter__()):
            if i == self.fail_after:
                raise SourceError("camA: the camera disconnected")
            yield item


def test_record_overwrite_keeps_the_old_recording_when_the_new_one_fails(tmp_path):
    rec = tmp_path / "rec"
    assert record(ListSource(5), rec) == 5
    old_index = (rec / INDEX_FILE).read_bytes()
    with pytest.raises(SourceError, match="disconnected"):
        record(FailingSource(10, fail_after=2), rec, overwrite=True)  # two new frames written, then a failure
    assert (rec / INDEX_FILE).read_bytes() == old_index
    assert [f.frame.index for f in replay(rec)] == [0, 1, 2, 3, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]  # the new recording's temporary directory is gone


def test_reid_record_overwrite_swaps_the_new_recording_in_at_the_end(tmp_path):
    from reidstream.pipeline.app.cli import record_main

    rec = tmp_path / "rec"
    assert record_main([str(rec), "--frames", "2", "crowd.people=1"]) == 0
    assert record_main([str(rec), "--frames", "3", "crowd.people=1"]) == 2  # refused without --overwrite
    assert RecordingSource(rec).frame_count == 2
    assert record_main([str(rec), "--frames", "3", "--overwrite", "crowd.people=1"]) == 0
    assert RecordingSource(rec).frame_count == 3 and read_meta(rec).source == "reid-record --camera sim"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]


def test_missing_and_corrupt_frames_in_the_middle_are_skipped_and_counted(rec5):
    (rec5 / "rgb" / "000001.png").unlink()
    png = rec5 / "depth" / "000003.png"
    png.write_bytes(png.read_bytes()[:100])
    skipped = []
    src = RecordingSource(rec5, on_skip=skipped.append)
    assert [f.frame.index for f in src] == [0, 2, 4]  # the replay goes on after each bad frame
    assert [(s.index, s.modality.value, s.file) for s in skipped] == [(1, "rgb", "rgb/000001.png"),
                                                                      (3, "depth", "depth/000003.png")]
    assert src.skipped == skipped
    assert skipped[0].message(rec5) == f"{rec5}: frame 1: rgb file rgb/000001.png is missing or empty; frame skipped"
    assert "depth/000003.png is truncated or undecodable; frame skipped" in skipped[1].message(rec5)
    with pytest.warns(RecordingWarning, match=r"frame 1: rgb file rgb/000001.png is missing or empty; frame skipped"):
        assert [f.frame.index for f in RecordingSource(rec5, max_frames=2)] == [0, 2]


def test_frames_missing_beyond_max_frames_are_not_reported(rec5):
    (rec5 / "ir" / "000004.png").unlink()
    src = RecordingSource(rec5, max_frames=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the replay stops before frame 4: nothing skipped
        assert [f.frame.index for f in src] == [0, 1, 2]
    assert src.skipped == []
