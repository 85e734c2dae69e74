"""The renderer is physically coherent: geometry, depth noise, materials, temperature, ground truth."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from reidstream.pipeline.sim.body import pose_body
from reidstream.pipeline.sim.population import MATERIALS, Population
from reidstream.pipeline.sim.world import Placement, SimWorld
from reidstream.pipeline.types import Modality


@pytest.fixture(scope="module")
def world():
    from reidstream.pipeline.config import config_from_mapping
    from reidstream.pipeline.sim.config import SimConfig

    return SimWorld.from_config(config_from_mapping(SimConfig, {"crowd": {"people": 0}}))


def _person_points(world, rendered, index=0):
    """World points of a person's valid depth pixels (back-projected through the camera model)."""
    rig = world.renderer.rig
    k = rig.intrinsics
    depth_m = rendered.images[Modality.DEPTH].astype(np.float64) / 1000.0
    ys, xs = np.nonzero((rendered.labels == index) & (depth_m > 0))
    z = depth_m[ys, xs]
    cam = np.stack([(xs - k.cx) / k.fx * z, (ys - k.cy) / k.fy * z, z], axis=1)
    return rig.to_world(cam)


@pytest.mark.parametrize("distance", [1.8, 4.0, 7.0])
def test_person_at_known_distance_renders_at_that_depth(world, distance):
    person = world.population[3]
    rendered = world.render_placements([Placement(3, 0.0, distance)])
    pts = _person_points(world, rendered)
    sigma = distance**2 * 0.08 / (615.0 * 0.05)  # the D4xx noise model at this distance
    assert len(pts) > 200
    # The body's surface faces the camera: its depth points lie around the body axis at z = distance.
    assert abs(np.median(pts[:, 2]) - distance) < 0.15 + 2 * sigma
    # Back-projected through intrinsics, mount height and tilt, the person stands on the floor
    # and is as tall as their identity says.
    if distance > 3.6:  # nearer, the feet are below the field of view of this 2.2 m, 12 deg mount
        assert np.percentile(pts[:, 1], 0.5) == pytest.approx(0.0, abs=0.06 + 3 * sigma)
    assert np.percentile(pts[:, 1], 99.8) == pytest.approx(person.height, abs=0.06 + 3 * sigma)
    ann = rendered.annotations[0]
    assert ann.identity == 3
    if distance > 3.6:
        assert ann.visible == pytest.approx(1.0, abs=0.01)
    else:  # the image bottom cuts the legs off
        assert 0.2 < ann.visible < 0.9
    chest = world.renderer.rig.to_camera(np.array([0.0, 0.70 * person.height, distance]))
    assert ann.distance == pytest.approx(chest[2], abs=0.05)  # depth along the optical axis


def test_depth_noise_grows_with_distance(world):
    errors = []
    for distance in (2.0, 6.0):
        r = world.render_placements([Placement(5, 0.0, distance)], noise_seed=1)
        d = r.images[Modality.DEPTH]
        sel = (r.labels == 0) & (d > 0)
        errors.append(np.std(d[sel] / 1000.0 - r.z[sel]))
    expected_ratio = (6.0 / 2.0) ** 2
    assert errors[1] / errors[0] == pytest.approx(expected_ratio, rel=0.35)


def test_depth_range_limits_and_occlusion_shadows(world, sim_config):
    short = SimWorld.from_config(sim_config(crowd={"people": 0}, sensors={"depth_max": 6.0}))
    r = short.render_placements([Placement(1, 0.0, 2.0)])
    d = r.images[Modality.DEPTH]
    assert (r.z > 6.0).sum() > 1000 and (d[r.z > 6.0] == 0).all()  # beyond depth_max: no depth
    assert (d[r.z < 5.0] > 0).mean() > 0.8
    # Left of the person (seen from the camera) the second imager is blocked: a band of holes.
    ys, xs = np.nonzero(r.labels == 0)
    row = int(np.median(ys))
    left = int(xs[ys == row].min())
    band = d[row, max(left - 8, 0):left]
    assert (band == 0).mean() > 0.7


def _torso_means(world, people, light=1.0):
    renderer = world.renderer
    bodies = [(i, pose_body(p, x, 3.0, math.pi, 0.0, 0.0)) for i, (p, x) in enumerate(people)]
    r = renderer.render(bodies, light, np.random.default_rng(0))
    out = []
    for i in range(len(people)):
        ys, xs = np.nonzero(r.labels == i)
        cy, cx = int(np.percentile(ys, 30)), int(np.median(xs))  # upper torso
        win = (slice(cy - 4, cy + 4), slice(cx - 4, cx + 4))
        out.append({m: r.images[m][win].reshape(-1, r.images[m].shape[2] if r.images[m].ndim == 3 else 1)
                    .mean(0) for m in r.images})
    return out


def test_ir_reflects_material_not_visible_colour(world):
    base = world.population[11]
    top = dataclasses.replace(base.top, pattern="solid", colour=(0.6, 0.05, 0.05), colour2=(0.6, 0.05, 0.05))
    cotton = dataclasses.replace(base, top=dataclasses.replace(top, material="cotton", ir_reflectance=0.75),
                                 carried="none", long_sleeves=True)
    nylon = dataclasses.replace(cotton, top=dataclasses.replace(top, material="nylon_black", ir_reflectance=0.05))
    a, b = _torso_means(world, [(cotton, -0.6), (nylon, 0.6)])
    assert np.abs(a[Modality.RGB] - b[Modality.RGB]).max() < 12  # same colour in RGB (noise aside)
    assert a[Modality.IR][0] - b[Modality.IR][0] > 60  # very different in IR


def test_population_ir_is_independent_of_colour():
    people = [Population(500, seed=0)[i] for i in range(500)]
    lum = np.array([np.dot(p.top.colour, (0.2126, 0.7152, 0.0722)) for p in people])
    ir = np.array([p.top.ir_reflectance for p in people])
    assert abs(np.corrcoef(lum, ir)[0, 1]) < 0.15
    assert {p.top.material for p in people} == set(MATERIALS)


def test_darkness_dims_and_noises_colour_but_not_thermal(world):
    place = [Placement(2, 0.0, 3.0)]
    bright, bright2 = (world.render_placements(place, light=1.0, noise_seed=s) for s in (4, 5))
    dark, dark2 = (world.render_placements(place, light=0.02, noise_seed=s) for s in (4, 5))
    np.testing.assert_array_equal(bright.images[Modality.THERMAL], dark.images[Modality.THERMAL])
    person = bright.labels == 0
    rgb = {k: x.images[Modality.RGB][person].astype(float) for k, x in
           {"b": bright, "b2": bright2, "d": dark, "d2": dark2}.items()}
    assert rgb["d"].mean() < 0.75 * rgb["b"].mean()  # auto-gain cannot make up for it all
    assert np.std(rgb["d"] - rgb["d2"]) > 3 * np.std(rgb["b"] - rgb["b2"])  # and what is left is noisy
    kelvin = bright.images[Modality.THERMAL].astype(float) / 100 - 273.15
    assert kelvin[person].max() > 30.0  # skin
    assert np.median(kelvin[~person]) == pytest.approx(21.0, abs=1.5)  # the room


def test_occlusion_lowers_visible_fraction(world):
    r = world.render_placements([Placement(1, 0.0, 7.0), Placement(2, 0.1, 4.0)])
    far, near = sorted(r.annotations, key=lambda a: -a.distance)
    assert near.visible > 0.95
    assert far.visible < 0.7
    x1, y1, x2, y2 = (int(v) for v in far.box)
    assert (r.labels[y1:y2 + 1, x1:x2 + 1] == 0).sum() == (r.labels == 0).sum()  # box holds its pixels


def test_same_seed_same_frames(sim_config):
    cfg = sim_config(seed=7, crowd={"people": 3})
    a, b = SimWorld.from_config(cfg), SimWorld.from_config(cfg)
    for _ in range(3):
        fa, fb = a.step(), b.step()
        for m in fa.frame.modalities:
            np.testing.assert_array_equal(fa.frame.image(m), fb.frame.image(m))
        assert fa.annotations == fb.annotations
    other = SimWorld.from_config(sim_config(seed=8, crowd={"people": 3})).step()
    assert not np.array_equal(other.frame.rgb, fa.frame.rgb)
