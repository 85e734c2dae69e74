"""FloorTracker on hand-made detections and body measures: people kept apart on the floor, ByteTrack's lifecycle,
the update contract."""

from __future__ import annotations

import numpy as np
import pytest

from reidstream.pipeline.body.measure import BodyMeasures
from reidstream.pipeline.config import ConfigError, config_from_mapping
from reidstream.pipeline.track import FloorTracker, FloorTrackerConfig
from reidstream.pipeline.types import Detections, Modality

FPS, F, CAM = 15.0, 615.0, 2.2  # frame rate, focal length (px), camera height (m)


def person_box(x: float, z: float, height: float) -> list[float]:
    """Image box of a 0.5 m wide person of ``height`` standing at lateral ``x``, forward ``z`` (level camera)."""
    u, w = 320 + F * x / z, F * 0.5 / z
    return [u - w / 2, 240 + F * (CAM - height) / z, u + w / 2, 240 + F * CAM / z]


def frame(people: list[tuple[float, float, float]], index: int, scores=None, depth=None,
          height_sigma: float = 0.03) -> tuple[Detections, BodyMeasures]:
    """Detections and measures of ``(x, z, height)`` people; ``depth[i]`` False leaves person i without depth."""
    n = len(people)
    boxes = np.array([person_box(*p) for p in people], np.float32).reshape(-1, 4)
    s = np.full(n, 0.9, np.float32) if scores is None else np.asarray(scores, np.float32)
    has = np.ones(n, bool) if depth is None else np.asarray(depth, bool)
    pos = np.array([p[:2] for p in people], np.float64).reshape(-1, 2)
    pos[~has] = np.nan
    height = np.where(has, [p[2] for p in people], np.nan) if n else np.zeros(0)
    measures = BodyMeasures(position=pos, distance=np.where(has, np.linalg.norm(pos, axis=1), np.nan),
                            height=height, height_sigma=np.where(has, height_sigma, np.inf),
                            width=np.where(has, 0.5, np.nan), width_sigma=np.where(has, 0.05, np.inf))
    return Detections(boxes, s, None, Modality.DEPTH, index), measures


def run(tracker: FloorTracker, frames, start: int = 0) -> list[dict[int, int]]:
    """Per frame (numbered from ``start``), person (input row) -> track id of the rows the tracker returned."""
    out = []
    for i, kwargs in enumerate(frames, start):
        people = kwargs.pop("people")
        dets, measures = frame(people, i, **{k: v for k, v in kwargs.items() if k != "appearance"})
        tracked = tracker.update(dets, i / FPS, measures, kwargs.get("appearance"))
        assert (tracked.track_ids >= 0).all() and tracked.frame_index == i
        np.testing.assert_array_equal(tracked.boxes, dets.boxes[tracker.last_index])
        out.append({int(r): int(t) for r, t in zip(tracker.last_index, tracked.track_ids)})
    return out


def step(tracker: FloorTracker, people, index: int, appearance=None, **kwargs) -> Detections:
    """One frame of ``people`` (numbered ``index``) through the tracker."""
    dets, measures = frame(people, index, **kwargs)
    return tracker.update(dets, index / FPS, measures, appearance)


def assert_kept(ids: list[dict[int, int]], person: int, frames: range) -> int:
    """The person has one id over ``frames`` wherever tracked (at least half of them); returns it."""
    got = [ids[i][person] for i in frames if person in ids[i]]
    assert len(got) >= len(frames) / 2 and len(set(got)) == 1, f"person {person}: ids {got}"
    return got[0]


def test_people_crossing_with_overlapping_boxes_are_not_swapped():
    """A tall person near and a short one farther walk towards each other, the far one hidden (undetected) while
    the near one passes in front, and both turn back where they met: boxes overlap, floor and height differ."""
    frames = []
    for i in range(40):
        t = min(i, 40 - i) / FPS  # walk in until the middle, then back out
        a, b = (-1.6 + 1.2 * t, 3.0, 1.86), (1.6 - 1.2 * t, 4.0, 1.58)
        hidden = 17 <= i <= 23
        frames.append({"people": [a] if hidden else [a, b]})
    ids = run(FloorTracker(), frames)
    boxes = [person_box(-1.6 + 1.2 * 20 / FPS, 3.0, 1.86), person_box(1.6 - 1.2 * 20 / FPS, 4.0, 1.58)]
    assert boxes[0][0] < boxes[1][2] and boxes[1][0] < boxes[0][2]  # the image boxes really overlap
    a, b = assert_kept(ids, 0, range(1, 40)), assert_kept(ids, 1, range(1, 40))
    assert a != b


def test_same_place_other_height_is_not_associated():
    tracker = FloorTracker()
    ids = run(tracker, [{"people": [(0.0, 3.0, 1.85)]} for _ in range(5)])
    tall = ids[-1][0]
    swapped = run(tracker, [{"people": [(0.0, 3.0, 1.55)]}], start=5)  # where the tall one is expected, 30 cm shorter
    assert swapped == [{}]  # not the tall person's track: a tentative new one
    again = step(tracker, [(0.0, 3.0, 1.85)], 6)
    assert again.track_ids.tolist() == [tall]


def test_same_place_same_height_is_told_apart_by_appearance():
    red, blue = np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 0.2, 1.0]])
    tracker = FloorTracker()
    run(tracker, [{"people": [(0.0, 3.0, 1.7)], "appearance": red} for _ in range(5)])
    other = step(tracker, [(0.05, 3.0, 1.7)], 5, blue)
    assert len(other) == 0
    back = step(tracker, [(0.05, 3.0, 1.7)], 6, red)
    assert back.track_ids.tolist() == [0]


def test_a_short_miss_keeps_the_id_a_long_one_does_not():
    walk = lambda i: {"people": [(-1.0 + 1.4 * i / FPS, 3.5, 1.7)]}  # noqa: E731
    gap = [walk(i) if not 5 <= i < 12 else {"people": []} for i in range(16)]  # missed for 0.47 s
    ids = run(FloorTracker(), gap)
    assert assert_kept(ids, 0, range(1, 16)) == 0
    long_gap = [walk(i) if not 5 <= i < 25 else {"people": []} for i in range(30)]  # 1.3 s > lost_track_buffer_s
    ids = run(FloorTracker(), long_gap)
    assert {ids[i][0] for i in range(1, 5)} == {0} and {ids[i][0] for i in range(26, 30)} == {1}


def test_low_scores_continue_tracks_but_do_not_start_them():
    walk = lambda i, s: {"people": [(-1.0 + 1.4 * i / FPS, 3.5, 1.7)], "scores": [s]}  # noqa: E731
    tracker = FloorTracker()
    assert run(tracker, [walk(i, 0.3) for i in range(4)]) == [{}] * 4
    tracker.reset()
    ids = run(tracker, [walk(i, 0.9) for i in range(3)] + [walk(i, 0.3) for i in range(3, 6)])
    assert [d.get(0) for d in ids] == [None, 0, 0, 0, 0, 0]


def test_detections_without_depth_are_tracked_on_boxes():
    walk = lambda i, depth: {"people": [(-1.0 + 1.4 * i / FPS, 3.5, 1.7)], "depth": [depth]}  # noqa: E731
    ids = run(FloorTracker(), [walk(i, i % 3 != 0) for i in range(12)])  # every third frame without depth
    assert assert_kept(ids, 0, range(1, 12)) == 0
    tracker = FloorTracker()
    for i in range(4):  # no measures at all: image association only
        out = tracker.update(Detections(np.array([person_box(0.1 * i, 3.5, 1.7)]), np.array([0.9])), i / FPS)
    assert out.track_ids.tolist() == [0]


def test_output_order_last_index_and_reset():
    tracker = FloorTracker()
    people = [(-1.5, 3.0, 1.8), (0.0, 5.0, 1.6), (1.5, 4.0, 1.7)]
    ids = run(tracker, [{"people": people, "scores": [0.9, 0.3, 0.8]} for _ in range(3)])
    assert ids[-1] == {0: 0, 2: 1}  # the low-score person never starts a track
    np.testing.assert_array_equal(tracker.last_index, [0, 2])
    tracker.reset()
    assert len(step(tracker, people, 0)) == 0 and tracker.last_index.size == 0
    assert step(tracker, people, 1).track_ids.tolist() == [0, 1, 2]


def test_contract_errors():
    tracker = FloorTracker()
    dets, measures = frame([(0.0, 3.0, 1.7), (1.0, 4.0, 1.6)], 0)
    with pytest.raises(ValueError, match="measures"):
        tracker.update(dets, 0.0, measures.subset([0]))
    with pytest.raises(ValueError, match="appearance"):
        tracker.update(dets, 0.0, measures, np.ones((3, 4)))
    with pytest.raises(ValueError, match="appearance"):
        tracker.update(dets, 0.0, measures, np.ones(2))
    tracker.update(dets, 1.0, measures, np.ones((2, 4)))
    with pytest.raises(ValueError, match="appearance"):
        tracker.update(dets, 1.1, measures, np.ones((2, 5)))
    with pytest.raises(ValueError, match="timestamp"):
        tracker.update(dets, 0.5, measures)


def test_config():
    cfg = config_from_mapping(FloorTrackerConfig, {"lost_track_buffer_s": 2.0, "minimum_consecutive_frames": 1},
                              "<test>")
    tracker = FloorTracker.from_config(cfg)
    assert tracker.config == cfg
    assert len(step(tracker, [(0.0, 3.0, 1.7)], 0)) == 1  # one frame is enough now
    with pytest.raises(ConfigError, match="floor_gat"):
        config_from_mapping(FloorTrackerConfig, {"floor_gat": 3.0}, "<test>")
    with pytest.raises(ConfigError):
        config_from_mapping(FloorTrackerConfig, {"floor_gate": "3"}, "<test>")


def test_measures_taken_through_someone_in_front_are_caught():
    from reidstream.pipeline.track.checks import BoxScale, shadowed

    near, far = person_box(0.0, 3.0, 1.8), person_box(0.1, 4.5, 1.6)
    boxes = np.array([far, near, person_box(1.5, 4.0, 1.7)])
    pos = np.array([[0.02, 3.0], [0.0, 3.0], [1.5, 4.0]])  # the far one measured on the near one's pixels
    assert shadowed(boxes, pos, 0.25).tolist() == [True, False, False]
    cut = np.array([near, near]) + [[0, 0, 0, 0], [30, 10, 30, 0]]  # both run off the bottom: either may be in front
    assert shadowed(cut, pos[:2], 0.25).tolist() == [True, True]
    scale = BoxScale(0.08)
    people = [(x, z, h) for x, z, h in [(-1.0, 3.0, 1.8), (0.5, 4.0, 1.6), (1.0, 5.0, 1.7), (-0.5, 6.0, 1.9)]]
    boxes = np.array([person_box(*p) for p in people])
    dist, height = np.array([p[1] for p in people]), np.array([p[2] for p in people])
    for _ in range(5):
        assert not scale.check(boxes, dist, height).any()
    assert scale.scale == pytest.approx(F, rel=1e-6)
    wrong = dist.copy()
    wrong[3] = 3.0  # the 6 m person measured on someone at 3 m: box far too small for 3 m
    assert scale.check(boxes, wrong, np.array([1.8, 1.6, 1.7, np.nan])).tolist() == [False, False, False, True]


def test_a_box_that_fits_keeps_its_track_when_its_floor_position_is_someone_elses():
    walk = lambda i: (-1.0 + 1.4 * i / FPS, 4.0, 1.7)  # noqa: E731
    tracker = FloorTracker(FloorTrackerConfig(box_scale_tolerance=0.0))
    run(tracker, [{"people": [walk(i)]} for i in range(5)])
    for i in range(5, 8):  # measured 1.5 m nearer (on someone in front), the box as predicted
        dets, m = frame([walk(i)], i)
        nearer = BodyMeasures(m.position - [[0.0, 1.5]], m.distance - 1.5, m.height, m.height_sigma, m.width,
                              m.width_sigma)
        assert tracker.update(dets, i / FPS, nearer).track_ids.tolist() == [0]  # box IoU ~1: the same person
        if i < 7:  # not pulled forward ...
            assert tracker.tracks[0].floor.position[1] == pytest.approx(4.0, abs=0.05)
    assert tracker.tracks[0].floor.position[1] == pytest.approx(2.5, abs=0.05)  # ... until floor_reset_frames


def test_nobody_walks_faster_than_max_speed():
    tracker = FloorTracker(FloorTrackerConfig(floor_gate=20.0, box_override_iou=1.0))  # only the speed gate left
    run(tracker, [{"people": [(-1.0 + 1.0 * i / FPS, 4.0, 1.7)]} for i in range(5)])
    for i in range(5, 12):  # missed for half a second
        step(tracker, [], i)
    far = step(tracker, [(1.0, 4.0, 1.7)], 12)  # 1.7 m from the last sighting after 0.53 s: 3.2 m/s
    assert len(far) == 0 and [t.track_id for t in tracker.tracks] == [0, -1]
    near = step(tracker, [(-0.3, 4.0, 1.7)], 13)  # 0.43 m in 0.6 s
    assert near.track_ids.tolist() == [0]


def test_a_floor_state_without_floor_measures_goes_vague_and_is_dropped():
    walk = lambda i: (-1.0 + 1.4 * i / FPS, 4.0, 1.7)  # noqa: E731
    tracker = FloorTracker()
    run(tracker, [{"people": [walk(i)]} for i in range(5)])
    for i in range(5, 40):  # depth lost: associated on boxes, the floor state only predicted
        assert step(tracker, [walk(i)], i, depth=[False]).track_ids.tolist() == [0]
    assert tracker.tracks[0].floor is None and tracker.tracks[0].height == pytest.approx(1.7)
    assert step(tracker, [walk(40)], 40).track_ids.tolist() == [0]
    assert tracker.tracks[0].floor is not None


# ---------------------------------------------------------------- a scripted scene in the simulator


def scripted_scene(turn_back: bool, frames: int = 38, fps: float = 15.0, speed: float = 1.3):
    """Two people of different heights (1.84 m, 1.55 m) and clothes walk towards each other, 3.3 m and 4.1 m from
    the camera; the near one hides the far one where they meet. ``turn_back``: both turn round there and walk
    back (a box tracker expects them to go on); else they walk past each other.

    Yields ``(frame, ground truth)`` per frame, rendered by the simulator from scripted placements.
    """
    from reidstream.pipeline.sim.config import SimConfig
    from reidstream.pipeline.sim.world import Placement, SimWorld

    world = SimWorld.from_config(config_from_mapping(
        SimConfig, {"modalities": ["depth"], "crowd": {"people": 0}, "camera": {"fps": fps}}, "<test>"))
    tall, short = 19, 0
    assert world.population[tall].height - world.population[short].height > 0.25
    for i in range(frames):
        back = turn_back and i > frames // 2
        t = (min(i, frames - i) if turn_back else i) / fps
        heading = -np.pi / 2 if back else np.pi / 2  # walking towards +x (the tall one) or -x
        walked = speed * i / fps
        people = [Placement(tall, -1.6 + speed * t, 3.3, heading, walked / (0.8 * world.population[tall].height), 1.0),
                  Placement(short, 1.6 - speed * t, 4.1, -heading, walked / (0.8 * world.population[short].height),
                            1.0)]
        rendered = world.render_placements(people, noise_seed=i)
        yield world.frame(rendered, i, i / fps), rendered.annotations


def track_people(scene, tracker) -> dict[int, set[int]]:
    """Runs depth detector -> body meter -> ``tracker`` over the scene; per track id, the people it was matched to
    (IoU >= 0.5, optimal assignment against the ground truth)."""
    from scipy.optimize import linear_sum_assignment

    from reidstream.pipeline.body.measure import BodyMeter
    from reidstream.pipeline.detect.depth_people import DepthPeopleDetector
    from reidstream.pipeline.track.motion import box_iou

    detector, meter = DepthPeopleDetector(), BodyMeter()
    people: dict[int, set[int]] = {}
    for frame_, truth in scene:
        dets = detector.detect(frame_)
        tracked = tracker.update(dets, frame_.timestamp, meter.measure(frame_, dets, detector.floor))
        gt = np.array([a.box for a in truth], np.float64).reshape(-1, 4)
        iou = box_iou(gt, tracked.boxes.astype(np.float64))
        for r, c in zip(*linear_sum_assignment(-iou)):
            if iou[r, c] >= 0.5:
                people.setdefault(int(tracked.track_ids[c]), set()).add(truth[r].identity)
    return people


@pytest.mark.parametrize("turn_back", [False, True], ids=["walk-past", "meet-and-turn-back"])
def test_simulated_people_meeting_are_not_swapped(turn_back, capsys):
    people = track_people(scripted_scene(turn_back), FloorTracker(FloorTrackerConfig(frame_rate=15.0)))
    assert sorted(people.values(), key=min) == [{0}, {19}], f"tracks -> people: {people}"
    try:
        from reidstream.pipeline.track import Tracker

        byte = track_people(scripted_scene(turn_back), Tracker(frame_rate=15.0))
    except ImportError:
        return
    with capsys.disabled():
        swapped = any(len(p) > 1 for p in byte.values())
        print(f"\n  ByteTrack on the same scene: {'SWAPS' if swapped else 'no swap'} (tracks -> people {byte})")


def test_appearance_of_another_kind_after_reset_appearance():
    tracker = FloorTracker()
    dets, measures = frame([(0.0, 3.0, 1.7), (1.0, 4.0, 1.6)], 0)
    tracker.update(dets, 0.0, measures, np.eye(2, 4))
    first = tracker.update(dets, 0.1, measures, np.eye(2, 4))
    assert len(first) == 2
    with pytest.raises(ValueError, match="appearance"):
        tracker.update(dets, 0.2, measures, np.eye(2, 6))
    tracker.reset_appearance()  # the light went off: infrared statistics from now on
    assert all(t.appearance is None for t in tracker.tracks)
    again = tracker.update(dets, 0.3, measures, np.eye(2, 6)[::-1])
    assert sorted(again.track_ids.tolist()) == sorted(first.track_ids.tolist())  # the tracks go on
    assert all(t.appearance is not None and t.appearance.shape == (6,) for t in tracker.tracks)
