"""Short-term tracking with ByteTrack: stable ids for moving boxes, new ids for new people, input order kept."""

from __future__ import annotations

import numpy as np
import pytest

from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.track import Tracker, TrackerConfig
from reidstream.pipeline.types import Detections, Modality

pytest.importorskip("trackers", reason="tracking needs the trackers package: pip install trackers")


def _dets(boxes, scores=None, index: int = 0) -> Detections:
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    s = np.full(len(b), 0.9, np.float32) if scores is None else np.asarray(scores, np.float32)
    return Detections(b, s, None, Modality.DEPTH, index)


def _walker(i: int, x0: float = 100.0, speed: float = 4.0) -> list[float]:
    return [x0 + speed * i, 120.0, x0 + 60 + speed * i, 300.0]


def test_moving_box_keeps_its_id_and_a_new_box_gets_a_new_one():
    tracker = Tracker()
    ids, second = [], []
    for i in range(40):
        boxes = [_walker(i)] + ([[450.0, 100.0, 510.0, 280.0]] if i >= 20 else [])
        out = tracker.update(_dets(boxes, index=i))
        assert out.frame_index == i and out.modality is Modality.DEPTH
        assert (out.track_ids >= 0).all()
        for box, tid in zip(out.boxes, out.track_ids):
            (ids if box[0] < 400 else second).append(int(tid))
    assert len(ids) == 39 and len(set(ids)) == 1  # from the second frame on, always the same id
    assert len(second) == 19 and len(set(second)) == 1 and second[0] != ids[0]


def test_output_keeps_input_order_boxes_and_scores():
    tracker = Tracker()
    for i in range(5):
        boxes = [_walker(i, 300), _walker(i, 10), _walker(i, 500)]
        out = tracker.update(_dets(boxes, [0.8, 0.95, 0.7], index=i))
    np.testing.assert_array_equal(out.boxes, np.asarray(boxes, np.float32))
    np.testing.assert_array_equal(out.scores, np.array([0.8, 0.95, 0.7], np.float32))
    assert len(set(out.track_ids.tolist())) == 3
    np.testing.assert_array_equal(tracker.last_index, [0, 1, 2])


def test_last_index_names_the_returned_rows():
    tracker = Tracker()
    for i in range(4):  # the middle box scores too low to start a track: it is left out
        boxes = [_walker(i, 10), _walker(i, 300), _walker(i, 500)]
        out = tracker.update(_dets(boxes, [0.9, 0.3, 0.8], index=i), measures=None, appearance=None)
    np.testing.assert_array_equal(tracker.last_index, [0, 2])
    np.testing.assert_array_equal(out.boxes, np.asarray(boxes, np.float32)[[0, 2]])
    tracker.reset()
    assert tracker.last_index.size == 0


def test_short_gaps_keep_the_id_and_reset_restarts():
    tracker = Tracker(frame_rate=15.0, lost_track_buffer=30)
    first = [int(t) for i in range(5) for t in tracker.update(_dets([_walker(i, speed=8)], index=i)).track_ids]
    for i in range(5, 10):  # missed for a third of a second
        assert len(tracker.update(_dets([], index=i))) == 0
    later = tracker.update(_dets([_walker(10, speed=8)], index=10))
    assert later.track_ids.tolist() == [first[0]]
    tracker.reset()
    assert len(tracker.update(_dets([_walker(0)]))) == 0  # unconfirmed again
    assert tracker.update(_dets([_walker(1)])).track_ids.tolist() == [0]


def test_low_scores_do_not_start_tracks_but_continue_them():
    tracker = Tracker()
    for i in range(6):
        assert len(tracker.update(_dets([_walker(i)], [0.3], index=i))) == 0
    for i in range(6, 9):
        out = tracker.update(_dets([_walker(i)], [0.9], index=i))
    out = tracker.update(_dets([_walker(9)], [0.3], index=9))  # second-stage association
    assert len(out) == 1 and out.scores[0] == pytest.approx(0.3)


def test_timestamps_and_config():
    cfg = config_from_mapping(TrackerConfig, {"frame_rate": 15.0, "minimum_consecutive_frames": 3}, "<test>")
    tracker = Tracker.from_config(cfg)
    assert tracker.config == cfg
    lens = [len(tracker.update(_dets([_walker(i)], index=i), timestamp=i / 15.0)) for i in range(5)]
    assert lens == [0, 0, 1, 1, 1]
