"""Metric body measures on people rendered by the simulator: height vs the truth, cut and hidden tops, the floor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reidstream.pipeline.body import BodyConfig, BodyMeasures, BodyMeter, FloorEstimator, FloorPlane
from reidstream.pipeline.config import ConfigError, config_from_mapping
from reidstream.pipeline.detect import AutoDetector, DepthPeopleDetector
from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.sim.world import Placement, SimWorld
from reidstream.pipeline.types import Detections, Frame, Intrinsics, Modality


def make_world(population_seed: int = 0, **camera) -> SimWorld:
    """An empty depth-only simulated room (people are placed explicitly)."""
    sections = {"modalities": ["depth"], "crowd": {"people": 0, "population_seed": population_seed}}
    if camera:
        sections["camera"] = camera
    return SimWorld.from_config(config_from_mapping(SimConfig, sections, "<test>"))


@pytest.fixture(scope="module")
def worlds() -> dict[int, SimWorld]:
    return {seed: make_world(seed) for seed in (0, 1)}


def render(world: SimWorld, placements: list[Placement], noise_seed: int = 0):
    """The frame and the ground-truth boxes (as detections, in placement order) of placed people."""
    rendered = world.render_placements(placements, noise_seed=noise_seed)
    boxes = {a.identity: a.box for a in rendered.annotations}
    dets = Detections(np.array([boxes[p.identity] for p in placements], np.float32), np.ones(len(placements),
                                                                                             np.float32))
    return world.frame(rendered, noise_seed, noise_seed / 30.0), dets


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("distance", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
def test_height_matches_the_truth_at_every_distance(worlds, seed, distance):
    world = worlds[seed]
    meter = BodyMeter()  # its own floor, estimated from each frame
    for j, identity in enumerate((3 * int(distance) + seed, 40 + 7 * int(distance), 80 + int(distance))):
        x = (j - 1) * 0.25 * distance
        heading = (0.0, math.pi / 2, 2.5)[j]
        frame, dets = render(world, [Placement(identity, x, distance, heading, 0.3 * j, 1.0)], noise_seed=j)
        m = meter.measure(frame, dets)
        truth = world.population[identity].height
        assert np.isfinite(m.height[0]) and 0 < m.height_sigma[0] < 0.08, (identity, m)  # caps of black nylon: holes
        assert abs(m.height[0] - truth) <= 0.03 + 3 * m.height_sigma[0], (identity, m.height[0], truth)
        assert abs(m.distance[0] - distance) < 0.4
        np.testing.assert_allclose(m.position[0], [x, distance], atol=0.25)


def test_uncertainty_grows_with_distance(worlds):
    meter, fl = BodyMeter(), FloorPlane.from_mount(2.2, 12.0)
    sigmas = []
    for d in (1.5, 6.5):
        frame, dets = render(worlds[0], [Placement(5, 0.0, d, math.pi, 0.0, 0.0)])
        sigmas.append(meter.measure(frame, dets, fl).height_sigma[0])
    assert sigmas[1] > 1.3 * sigmas[0]


def test_top_cut_by_the_image_border_has_no_height():
    world = make_world(tilt_deg=45.0)  # looking steeply down: a near head leaves the image at its top
    frame, dets = render(world, [Placement(2, 0.0, 1.3, math.pi, 0.0, 0.0)])
    assert dets.boxes[0, 1] == 0.0
    m = BodyMeter().measure(frame, dets, FloorPlane.from_mount(2.2, 45.0))
    assert np.isnan(m.height[0]) and m.height_sigma[0] == np.inf and np.isnan(m.width[0])
    assert np.isfinite(m.distance[0]) and np.isfinite(m.position[0]).all()  # the rest is still measured


def test_head_hidden_behind_a_nearer_person_has_no_height(worlds):
    world = worlds[0]
    tall = max(range(60), key=lambda i: world.population[i].height)
    short = min(range(60), key=lambda i: world.population[i].height)
    frame, dets = render(world, [Placement(tall, 0.0, 1.5, math.pi), Placement(short, 0.0, 3.0, math.pi)])
    m = BodyMeter().measure(frame, dets, FloorPlane.from_mount(2.2, 12.0))
    assert abs(m.height[0] - world.population[tall].height) < 0.03 + 3 * m.height_sigma[0]
    assert np.isnan(m.height[1]) and m.height_sigma[1] == np.inf


def test_boxes_without_depth_give_no_measures(worlds):
    frame, dets = render(worlds[0], [Placement(1, -0.6, 3.0), Placement(2, 0.6, 3.0)])
    depth = frame.depth.copy()
    x1, y1, x2, y2 = np.round(dets.boxes[1]).astype(int)
    depth[max(y1 - 40, 0):y2, max(x1 - 20, 0):x2 + 20] = 0  # a hole where the second person stands
    holed = Frame(depth=depth, intrinsics=frame.intrinsics, index=frame.index)
    m = BodyMeter().measure(holed, dets, FloorPlane.from_mount(2.2, 12.0))
    assert np.isfinite(m.position[0]).all() and np.isfinite(m.height[0])
    assert np.isnan(m.position[1]).all() and np.isnan(m.distance[1]) and np.isnan(m.height[1])
    assert m.height_sigma[1] == np.inf and np.isnan(m.width[1]) and m.width_sigma[1] == np.inf
    colour_only = Frame(rgb=np.zeros((480, 640, 3), np.uint8), intrinsics=frame.intrinsics)
    assert np.isnan(BodyMeter().measure(colour_only, dets).position).all()
    assert len(BodyMeter().measure(frame, Detections.empty())) == 0
    with pytest.raises(ValueError, match="no intrinsics"):
        BodyMeter().measure(Frame(depth=frame.depth), dets)


def test_unaligned_frame_maps_boxes_into_the_depth_image(worlds):
    frame, dets = render(worlds[0], [Placement(4, 0.3, 3.5, math.pi, 0.0, 0.0)])
    fl = FloorPlane.from_mount(2.2, 12.0)
    aligned = BodyMeter().measure(frame, dets, fl)
    k2 = Intrinsics(1280, 960, frame.intrinsics.fx * 2, frame.intrinsics.fy * 2, 639.5, 479.5)
    big = Frame(rgb=np.zeros((960, 1280, 3), np.uint8), depth=frame.depth, intrinsics=k2, alignment="unaligned",
                stream_intrinsics={Modality.DEPTH: frame.intrinsics})
    scaled = Detections(dets.boxes * 2 + 0.5, dets.scores)  # the same box in the colour grid
    unaligned = BodyMeter().measure(big, scaled, fl)
    assert unaligned.height[0] == pytest.approx(aligned.height[0], abs=0.01)


def test_behind_the_depth_detector_with_its_floor(sim_config):
    world = SimWorld.from_config(sim_config(seed=4, modalities=["depth"],
                                            crowd={"people": 3, "min_distance": 1.5, "max_distance": 6.0}))
    auto, meter = AutoDetector(depth=DepthPeopleDetector()), BodyMeter()
    assert auto.floor is None
    checked = 0
    for _ in range(8):
        item = world.step()
        dets = auto.detect(item.frame)
        m = meter.measure(item.frame, dets, auto.floor)
        assert len(m) == len(dets)
        for a in item.annotations:
            if a.visible < 0.9 or not len(dets):
                continue
            i = int(np.argmin(np.abs(dets.boxes - np.array(a.box)).sum(1)))
            if np.abs(dets.boxes[i] - np.array(a.box)).max() < 15 and np.isfinite(m.height[i]):
                truth = world.population[a.identity].height
                assert abs(m.height[i] - truth) <= 0.03 + 3 * m.height_sigma[i]
                checked += 1
    assert auto.floor is not None and checked >= 5


@pytest.mark.parametrize("mount", [(2.2, 12.0), (2.8, 25.0)])
def test_floor_estimator_recovers_the_camera_mount(mount):
    world = make_world(mount_height=mount[0], tilt_deg=mount[1])
    estimator = FloorEstimator()
    for i in range(4):
        frame, _ = render(world, [Placement(7, 0.5, 3.0)], noise_seed=i)
        floor = estimator.update_from_frame(frame)
    assert floor.camera_height == pytest.approx(mount[0], abs=0.03)
    assert floor.tilt_deg == pytest.approx(mount[1], abs=0.4)
    lateral, forward = floor.axes()
    np.testing.assert_allclose([lateral @ floor.normal, forward @ floor.normal], 0.0, atol=1e-9)
    with pytest.raises(ValueError, match="both mount_height and tilt_deg"):
        FloorEstimator(mount_height=2.0)


def test_body_measures_contract():
    m = BodyMeasures.empty(3)
    assert len(m) == 3 and m.position.shape == (3, 2) and m.position.dtype == np.float64
    assert np.isnan(m.height).all() and (m.height_sigma == np.inf).all()
    assert len(BodyMeasures.empty()) == 0 and BodyMeasures.empty().position.shape == (0, 2)
    good = dict(position=np.zeros((2, 2)), distance=np.array([2.0, 3.0]), height=np.array([1.7, np.nan]),
                height_sigma=np.array([0.01, np.inf]), width=np.array([np.nan, 0.45]),
                width_sigma=np.array([np.inf, 0.03]))
    m = BodyMeasures(**good)
    sub = m.subset([1])
    assert len(sub) == 1 and sub.width[0] == 0.45 and np.isnan(sub.height[0])
    assert len(m.subset(np.array([True, False]))) == 1
    with pytest.raises(ValueError):
        m.height[0] = 2.0  # read-only
    bad = [("position", np.zeros((2, 3))), ("distance", np.zeros(3)), ("height", [1.7, 1.8]),
           ("height_sigma", np.array([-0.01, np.inf])), ("height_sigma", np.array([np.inf, np.inf])),
           ("width_sigma", np.array([0.02, 0.03])), ("distance", np.array([np.inf, 1.0])),
           ("width", np.zeros((2, 1)))]
    for name, value in bad:
        with pytest.raises(ValueError, match=f"BodyMeasures.{name}"):
            BodyMeasures(**{**good, name: value})


def test_config_builds_the_meter():
    cfg = config_from_mapping(BodyConfig, {"step": 3, "mount_height": 2.5, "tilt_deg": 10.0}, "<test>")
    meter = BodyMeter.from_config(cfg)
    assert meter.config == cfg and meter.floor.camera_height == 2.5
    meter.reset()
    assert meter.floor.camera_height == 2.5
    with pytest.raises(ConfigError, match="unknown key"):
        config_from_mapping(BodyConfig, {"stepp": 2}, "<test>")
    with pytest.raises(ConfigError, match="both mount_height and tilt_deg"):
        config_from_mapping(BodyConfig, {"mount_height": 2.5}, "<test>")
