"""The depth-only people detector on simulated RGB-D frames: recall, false positives, the dark, the floor plane."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from reidstream.pipeline.config import ConfigError, config_from_mapping, load_config
from reidstream.pipeline.detect import DepthPeopleConfig, DepthPeopleDetector, Detector, FloorPlane
from reidstream.pipeline.detect.depth_people import suppress_overlaps
from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.sim.world import SimWorld
from reidstream.pipeline.types import Alignment, DepthUnit, Frame, Intrinsics, Modality

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "sim"
RANGE = {"min_distance": 1.5, "max_distance": 7.0}


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two sets of xyxy boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def evaluate(world: SimWorld, detector: DepthPeopleDetector, frames: int = 30, every: int = 4,
             span: tuple[float, float] = (1.5, 7.0)):
    """(found, total) of people fully in view at ``span`` (m) matched at IoU >= 0.5, and the false positives."""
    found = total = false_pos = 0
    for i in range(frames * every):
        item = world.step()
        dets = detector.detect(item.frame)  # every frame: the floor plane is tracked
        if i % every:
            continue
        everyone = np.array([a.box for a in item.annotations], np.float32).reshape(-1, 4)
        gt = np.array([a.box for a in item.annotations if a.visible >= 0.7 and span[0] <= a.distance <= span[1]],
                      np.float32).reshape(-1, 4)
        total += len(gt)
        matched = set()
        if len(gt) and len(dets):
            m = iou(gt, dets.boxes)
            rows, cols = linear_sum_assignment(-m)
            hits = [(r, c) for r, c in zip(rows, cols) if m[r, c] >= 0.5]
            found += len(hits)
            matched = {c for _, c in hits}
        for j in set(range(len(dets))) - matched:  # a box on nobody (not even a partly visible person)
            if not len(everyone) or iou(dets.boxes[j:j + 1], everyone).max() < 0.3:
                false_pos += 1
    return found, total, false_pos


@pytest.mark.parametrize("seed,people", [(0, 3), (1, 4), (2, 2)])
def test_finds_people_in_view(sim_config, seed, people):
    world = SimWorld.from_config(sim_config(seed=seed, modalities=["depth"], crowd={"people": people, **RANGE}))
    detector = DepthPeopleDetector()
    assert isinstance(detector, Detector) and detector.name == "depth-people"
    found, total, false_pos = evaluate(world, detector)
    assert total >= 20
    assert found / total >= 0.9, f"recall {found}/{total}"
    assert false_pos <= 2


def test_people_before_the_back_wall_are_found_once_its_noise_is_background(sim_config):
    """At 7-8 m, 0.5-1.5 m before the room's back wall (8.5 m), depth noise (about 0.15 m) smears the wall's
    points into a band the people merge with. With the background model learning that band, recall there
    rises clearly over the same detector without it (``background_s=0``), without false detections."""
    def run(**settings):
        world = SimWorld.from_config(sim_config(seed=5, modalities=["depth"],
                                                crowd={"people": 2, "min_distance": 7.0, "max_distance": 8.0}))
        return evaluate(world, DepthPeopleDetector(**settings), frames=40, span=(7.0, 8.0))

    found, total, false_pos = run()
    before, _, false_before = run(background_s=0.0)
    assert total >= 30
    assert found >= before + 0.15 * total, f"recall {found}/{total}, without the background {before}/{total}"
    assert false_pos <= max(2, false_before)


def test_works_in_the_dark():
    cfg = load_config(SimConfig, CONFIGS / "dark.yaml", ["seed=3", "modalities=[rgb, depth]", "crowd.people=3",
                                                         "crowd.min_distance=1.5", "crowd.max_distance=7.0"])
    world = SimWorld.from_config(cfg)
    assert world.step().frame.rgb.mean() < 120  # colour really is dark
    found, total, false_pos = evaluate(world, DepthPeopleDetector())
    assert total >= 20 and found / total >= 0.9, f"recall {found}/{total}"
    assert false_pos <= 2


@pytest.mark.parametrize("config", ["default.yaml", "ceiling.yaml", "dark.yaml"])
def test_empty_room_has_no_detections(config):
    cfg = load_config(SimConfig, CONFIGS / config, ["crowd.people=0", "modalities=[depth]", "seed=6"])
    world, detector = SimWorld.from_config(cfg), DepthPeopleDetector()
    counts = [len(detector.detect(world.step().frame)) for _ in range(40)]
    assert sum(counts) == 0


@pytest.mark.parametrize("config", ["default.yaml", "ceiling.yaml", "dark.yaml"])
def test_floor_plane_is_found(config):
    cfg = load_config(SimConfig, CONFIGS / config, ["modalities=[depth]"])
    world, detector = SimWorld.from_config(cfg), DepthPeopleDetector()
    assert detector.floor is None
    for _ in range(10):
        detector.detect(world.step().frame)
    assert abs(detector.floor.camera_height - cfg.camera.mount_height) < 0.1
    assert abs(detector.floor.tilt_deg - cfg.camera.tilt_deg) < 2.0


def test_floor_is_estimated_afresh_when_the_camera_moves(sim_config):
    low = SimWorld.from_config(sim_config(modalities=["depth"], crowd={"people": 1}))
    high = SimWorld.from_config(sim_config(modalities=["depth"], crowd={"people": 1},
                                           camera={"mount_height": 2.8, "tilt_deg": 25.0}))
    detector = DepthPeopleDetector()
    for _ in range(5):
        detector.detect(low.step().frame)
    assert abs(detector.floor.camera_height - 2.2) < 0.1
    for _ in range(8):
        detector.detect(high.step().frame)
    assert abs(detector.floor.camera_height - 2.8) < 0.1 and abs(detector.floor.tilt_deg - 25.0) < 2.0
    detector.reset()
    assert detector.floor is None


def test_known_mount_gives_the_floor_before_any_frame(sim_config):
    detector = DepthPeopleDetector(mount_height=2.2, tilt_deg=12.0)
    assert detector.floor.camera_height == 2.2 and detector.floor.tilt_deg == pytest.approx(12.0)
    world = SimWorld.from_config(sim_config(modalities=["depth"], crowd={"people": 3, **RANGE}))
    found, total, _ = evaluate(world, detector, frames=10)
    assert found / total >= 0.8
    with pytest.raises(ValueError, match="both mount_height and tilt_deg"):
        DepthPeopleDetector(mount_height=2.2)


def test_floor_plane_geometry():
    plane = FloorPlane.from_mount(2.0, 20.0)
    # A camera-frame point straight below the camera at the floor.
    t = np.radians(20.0)
    below = np.array([[0.0, 2.0 * np.cos(t), 2.0 * np.sin(t)]], np.float32)
    assert plane.height(below)[0] == pytest.approx(0.0, abs=1e-6)
    assert plane.height(np.zeros((1, 3), np.float32))[0] == pytest.approx(2.0)
    pts = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
    pts -= np.outer(plane.height(pts), plane.normal).astype(np.float32)  # onto the plane
    fit = FloorPlane.fit(pts, plane.normal)
    assert fit.camera_height == pytest.approx(2.0, abs=1e-4) and fit.tilt_deg == pytest.approx(20.0, abs=1e-3)


def test_detections_follow_the_frame_conventions(sim_config):
    world = SimWorld.from_config(sim_config(modalities=["rgb", "depth"], crowd={"people": 3, **RANGE}))
    detector = DepthPeopleDetector()
    frame = world.step().frame
    dets = detector.detect(frame)
    assert len(dets) >= 1 and dets.modality is Modality.DEPTH and dets.frame_index == frame.index
    assert dets.boxes.dtype == np.float32 and (dets.track_ids == -1).all()
    assert (dets.boxes[:, :2] >= 0).all() and (dets.boxes[:, 2] <= 640).all() and (dets.boxes[:, 3] <= 480).all()
    assert ((dets.scores >= 0.3) & (dets.scores <= 1.0)).all() and (np.diff(dets.scores) <= 0).all()

    # Float metres give the same people.
    metres = Frame(depth=frame.depth_metres(), intrinsics=frame.intrinsics, index=frame.index,
                   depth_unit=DepthUnit.METRE)
    again = DepthPeopleDetector().detect(metres)
    np.testing.assert_allclose(np.sort(again.boxes, axis=0), np.sort(dets.boxes, axis=0), atol=1e-3)

    # Unaligned: colour at twice the resolution, depth with its own intrinsics -> boxes in colour pixels.
    k2 = Intrinsics(1280, 960, frame.intrinsics.fx * 2, frame.intrinsics.fy * 2, 639.5, 479.5)
    big = Frame(rgb=np.repeat(np.repeat(frame.rgb, 2, axis=0), 2, axis=1), depth=frame.depth, intrinsics=k2,
                index=frame.index, alignment=Alignment.UNALIGNED, stream_intrinsics={Modality.DEPTH: frame.intrinsics})
    scaled = DepthPeopleDetector().detect(big)
    np.testing.assert_allclose(np.sort(scaled.boxes, axis=0), np.sort(dets.boxes, axis=0) * 2, atol=1.0)


def test_frames_it_cannot_use_are_refused():
    detector = DepthPeopleDetector()
    with pytest.raises(ValueError, match="has no depth image"):
        detector.detect(Frame(rgb=np.zeros((48, 64, 3), np.uint8)))
    with pytest.raises(ValueError, match="no intrinsics"):
        detector.detect(Frame(depth=np.ones((48, 64), np.uint16)))
    flat = Frame(depth=np.full((48, 64), 2000, np.uint16), intrinsics=Intrinsics.realsense_d435(64, 48))
    assert len(detector.detect(flat)) == 0  # a wall and no floor: nothing, no error


def test_config_builds_the_detector():
    cfg = config_from_mapping(DepthPeopleConfig, {"step": 2, "mount_height": 2.5, "tilt_deg": 10.0}, "<test>")
    detector = DepthPeopleDetector.from_config(cfg)
    assert detector.config == cfg and detector.floor.camera_height == 2.5
    with pytest.raises(ConfigError, match="unknown key"):
        config_from_mapping(DepthPeopleConfig, {"stepp": 2}, "<test>")


def test_a_box_overlapping_a_better_one_is_suppressed():
    """Non-maximum suppression (step 7): of two boxes on one person (IoU 0.82) the better-scored stays; a box
    overlapping it at IoU 0.43 (someone partly behind) and a box apart stay; ``nms_iou`` 1 keeps all."""
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 0, 30, 10], [0, 0, 10, 20]], np.float64)
    scores = np.array([0.5, 0.9, 0.3, 0.4])
    assert suppress_overlaps(boxes, scores, 0.5).tolist() == [1, 2, 3]
    assert suppress_overlaps(boxes, scores, 0.4).tolist() == [1, 2]
    assert suppress_overlaps(boxes, scores, 1.0).tolist() == [0, 1, 2, 3]
    assert suppress_overlaps(boxes[:0], scores[:0], 0.5).tolist() == []
    with pytest.raises(ConfigError, match="nms_iou"):
        config_from_mapping(DepthPeopleConfig, {"nms_iou": 0.0}, "<test>")
    assert DepthPeopleDetector(nms_iou=0.7).config.nms_iou == 0.7
