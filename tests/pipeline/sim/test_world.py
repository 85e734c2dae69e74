"""The simulated world over time and as a Source: people come, go, come back; frames are valid."""

from __future__ import annotations

import numpy as np

from reidstream.pipeline.sim.population import Population, make_person
from reidstream.pipeline.sim.world import SimWorld
from reidstream.pipeline.sources import Source
from reidstream.pipeline.sources.sim import SimSource
from reidstream.pipeline.types import Modality


def test_population_is_seeded_and_distinct():
    a, b = Population(300, seed=1), Population(50, seed=1)
    assert a[17] == b[17] == make_person(1, 17)
    assert Population(300, seed=2)[17] != a[17]
    signatures = {(round(p.height, 3), p.top.colour, p.bottom.colour) for p in (a[i] for i in range(300))}
    assert len(signatures) == 300
    heights = np.array([a[i].height for i in range(300)])
    assert 1.45 <= heights.min() and heights.max() <= 2.0 and heights.std() > 0.06


def test_people_enter_leave_and_return(sim_config):
    world = SimWorld.from_config(sim_config(seed=2, modalities=["depth"], camera={"width": 160, "height": 120},
                                            crowd={"people": 3, "return_prob": 0.7, "mean_gap_s": 0.3,
                                                   "pause_prob": 0.0}))
    seen, arrivals, visible_prev = set(), [], set()
    distances = []
    for _ in range(900):
        item = world.step()
        ids = {a.identity for a in item.annotations}
        arrivals += [i for i in ids - visible_prev]
        visible_prev = ids
        seen |= ids
        distances += [a.distance for a in item.annotations if a.visible > 0.9]
    assert len(seen) > 3  # more people than fit at once came through
    assert len(arrivals) > len(seen)  # someone came back after leaving the view
    assert 0.8 < min(distances) and max(distances) < 9.0


def test_sim_source_yields_valid_frames_in_order(sim_config):
    cfg = sim_config(camera={"width": 160, "height": 120}, crowd={"people": 2})
    with SimSource.from_config(cfg, max_frames=5) as source:
        assert isinstance(source, Source)
        items = list(source)
    assert [i.frame.index for i in items] == list(range(5))
    assert all(i.has_ground_truth for i in items)
    f = items[0].frame
    assert f.modalities == tuple(Modality)
    assert f.rgb.shape == (120, 160, 3) and f.depth.dtype == np.uint16 and f.thermal.dtype == np.uint16
    assert f.intrinsics.width == 160 and f.camera_id == "sim0"
    assert items[1].frame.timestamp - items[0].frame.timestamp == 1 / 30
