"""Privacy mode: PrivacyFilter strips colour, DepthRecordingSink records depth/IR only."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest

from reidstream.pipeline.recording import INDEX_FILE, read_meta
from reidstream.pipeline.sinks import AnnotatedVideoSink, DepthRecordingSink, EventLogSink, PrivacyFilter, SinkBase
from reidstream.pipeline.sinks.privacy import strip_colour
from reidstream.pipeline.sources.recording import RecordingSource
from reidstream.pipeline.types import Alignment, Intrinsics, Modality


class Recorder(SinkBase):
    name = "rec"

    def __init__(self, needs_images=True):
        self.needs_images = needs_images
        self.results = []

    def _write(self, result):
        self.results.append(result)


def test_filter_hands_on_frames_without_colour(make_result):
    inner = Recorder()
    f = PrivacyFilter(inner)
    assert f.name == "privacy:rec" and f.needs_images
    original = [make_result(i) for i in range(3)]
    for r in original:
        f(r)
    f.close()
    assert inner.closed
    assert len(inner.results) == 3
    for got, r in zip(inner.results, original):
        assert got.frame.rgb is None and got.frame.modalities == (Modality.DEPTH, Modality.IR)
        assert np.array_equal(got.frame.depth, r.frame.depth) and got.frame.index == r.index
        assert got.events == r.events and got.identities == r.identities and got.annotations == r.annotations
        assert np.array_equal(got.detections.boxes, r.detections.boxes)
        assert r.frame.rgb is not None  # the caller's result is untouched


def test_colour_only_frames_skip_image_sinks_but_keep_events(tmp_path, make_result):
    images, events = Recorder(needs_images=True), Recorder(needs_images=False)
    log = EventLogSink(tmp_path / "events.jsonl")
    sinks = [PrivacyFilter(images), PrivacyFilter(events), PrivacyFilter(log)]
    r = make_result(0, modalities=("rgb",))
    for s in sinks:
        s(r)
        s.close()
    assert images.results == [] and sinks[0].frames_skipped == 1
    (got,) = events.results
    assert got.frame.modalities == (Modality.DEPTH,) and not got.frame.depth.any()  # all "no depth"
    assert got.frame.size == r.frame.size and got.events == r.events
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert [json.loads(s) for s in lines] == [e.to_dict() for e in r.events]


def test_strip_colour_of_unaligned_frames(make_frame):
    f = make_frame(0)
    ir_k = Intrinsics(32, 24, 30.0, 30.0, 15.5, 11.5)
    un = dataclasses.replace(f, ir=f.ir[::2, ::2].copy(), alignment=Alignment.UNALIGNED,
                             stream_intrinsics={Modality.IR: ir_k})
    out = strip_colour(un)
    assert out.rgb is None and out.intrinsics is None  # depth has no intrinsics of its own here
    assert out.stream_intrinsics == {Modality.IR: ir_k}
    ir_only = dataclasses.replace(f, depth=None, rgb=None)
    assert strip_colour(ir_only) is ir_only


def test_depth_recording_has_no_colour(tmp_path, make_result):
    path = tmp_path / "rec"
    results = [make_result(0), make_result(1, modalities=("rgb",)), make_result(2, identities=("id-0001",))]
    with DepthRecordingSink(path, fps=15) as sink:
        for r in results:
            sink(r)
    assert sink.frames_written == 2 and sink.frames_skipped == 1
    assert not (path / "rgb").exists() and sorted(p.name for p in path.iterdir()) == \
        ["depth", "frames.jsonl", "ir", "recording.json"]
    assert not any("rgb" in line for line in (path / INDEX_FILE).read_text().splitlines())
    assert read_meta(path).modalities == (Modality.DEPTH, Modality.IR)
    with RecordingSource(path) as src:
        replay = list(src)
    assert [a.frame.index for a in replay] == [0, 2]
    for a, r in zip(replay, (results[0], results[2])):
        assert a.frame.rgb is None and np.array_equal(a.frame.depth, r.frame.depth)
        assert a.has_ground_truth and a.annotations == r.annotations
    with pytest.raises(FileExistsError, match="overwrite=True"):
        DepthRecordingSink(path)


def test_filtered_video_shows_a_grey_rgb_tile(tmp_path, make_result):
    path = tmp_path / "v.avi"
    with PrivacyFilter(AnnotatedVideoSink(path)) as sink:
        sink(make_result(0, rgb="red"))
    cap = cv2.VideoCapture(str(path))
    ok, img = cap.read()
    cap.release()
    tile = img[:48, :64].astype(int)
    assert ok and int((tile.max(axis=2) - tile.min(axis=2)).max()) < 24
