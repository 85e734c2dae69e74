"""The simulated multi-camera site: config checks, one schedule with global ids, transit times, recording."""

from __future__ import annotations

import json

import pytest

from reidstream.pipeline.config import ConfigError, config_from_mapping, load_config
from reidstream.pipeline.recording import read_meta
from reidstream.pipeline.sim.config import SimSiteConfig
from reidstream.pipeline.sim.site import SITE_FILE, Site, read_site_manifest
from reidstream.pipeline.sources.recording import RecordingSource
from reidstream.training.synth_cli import main as synth_main

SMALL = {"width": 160, "height": 120, "fps": 10.0}


def small_site(**top) -> dict:
    return {"duration_s": 40.0, "people": {"count": 3, "start_spread_s": 2.0, "away_prob": 0.0},
            "cameras": {"room": {"camera": SMALL},
                        "corridor": {"light": "dark", "camera": SMALL, "room": {"width": 3.5, "depth": 10.0}}},
            "links": [{"between": ["room", "corridor"], "transit_s": [3.0, 5.0]}], **top}


def test_the_shipped_config_is_a_lit_rgbd_room_and_a_dark_ir_corridor():
    cfg = load_config(SimSiteConfig, "configs/sim/site-two-rooms.yaml")
    room, corridor = cfg.cameras["room"], cfg.cameras["corridor"]
    assert (room.light, room.streams(), corridor.light, corridor.streams()) == (
        "lit", ["rgb", "depth"], "dark", ["ir", "depth"])
    assert cfg.people.count == 4 and Site(cfg).frames("room") >= 900 and Site(cfg).frames("corridor") >= 900


@pytest.mark.parametrize("change, message", [
    ({"cameras": {"room": {"lens": 1}, "corridor": {}}}, "key 'cameras.room.lens': unknown key"),
    ({"people": {"count": 3, "walkers": 2}}, "key 'people.walkers': unknown key"),
    ({"links": [{"between": ["room", "hall"]}]}, "unknown camera"),
    ({"links": [{"between": ["room", "room"]}]}, "two different cameras"),
    ({"links": [{"between": ["room", "corridor"], "transit_s": [5.0, 2.0]}]}, "transit_s"),
    ({"cameras": {"room": {"camera": {"camera_id": "x"}}, "corridor": {}}}, "camera id is the key 'room'"),
    ({"cameras": {"room": {"light": "dark", "lighting": {"level": 1.0}}, "corridor": {}}}, "does not fit light"),
    ({"cameras": {"room": {}}}, "key 'cameras'"),
    ({"cameras": {"room": {}, "corridor": {}, "hall": {}}}, r"\['hall'\] are linked to no other camera"),
])
def test_bad_site_configs_are_refused(change, message):
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(SimSiteConfig, small_site(**change), "site.yaml")


def test_people_walk_between_cameras_with_global_ids_and_transit_times():
    cfg = config_from_mapping(SimSiteConfig, small_site())
    site = Site(cfg)
    seen: dict[str, dict[int, list[float]]] = {}
    for cid, source in site.sources(max_frames=site.frames("room")).items():
        for af in source:
            assert af.frame.camera_id == cid and af.frame.timestamp == pytest.approx(af.frame.index / 10.0)
            assert af.has_ground_truth
            for a in af.annotations:
                seen.setdefault(cid, {}).setdefault(a.identity, []).append(af.frame.timestamp)
    people = set(site.plan.people)
    assert set(seen["room"]) | set(seen["corridor"]) == people
    assert set(seen["room"]) & set(seen["corridor"])  # the same global id in both cameras
    visits = site.plan.schedule(cfg.duration_s)
    assert {v.camera for v in visits} == {"room", "corridor"}
    for person in people:
        mine = [v for v in visits if v.person == person]
        assert len(mine) >= 2
        for a, b in zip(mine, mine[1:]):  # away_prob 0: always to the linked room, after 3-5 s of transit
            assert a.camera != b.camera and 3.0 <= b.enter - a.leave <= 5.0 + 0.1 + 1e-9
            in_a = [t for t in seen[a.camera].get(person, []) if a.enter <= t < a.leave]
            in_b = [t for t in seen[b.camera].get(person, []) if b.enter <= t < b.leave]
            if in_a and in_b:  # out of view in one camera at least the transit time before showing in the next
                assert min(in_b) - max(in_a) >= 3.0
    # The schedule does not depend on which camera is run first or how far.
    again = Site(cfg)
    corridor = [[a.identity for a in af.annotations] for af in again.sources(max_frames=200)["corridor"]]
    first = Site(cfg)
    list(first.sources(max_frames=400)["room"])
    assert [[a.identity for a in af.annotations] for af in first.sources(max_frames=200)["corridor"]] == corridor


def test_reid_synth_site_records_every_camera_and_site_json(tmp_path, capsys):
    config = tmp_path / "site.yaml"
    config.write_text(json.dumps(small_site(duration_s=3.0)))
    out = tmp_path / "rec"
    assert synth_main(["site", str(config), "--out", str(out)]) == 0
    assert "wrote 30 frames of corridor (dark, depth+ir)" in capsys.readouterr().out
    doc = json.loads((out / SITE_FILE).read_text())
    assert doc["format"] == "reid-stream-site" and doc["version"] == 1
    assert [(c["id"], c["dir"], c["modalities"], c["light"], c["frames"]) for c in doc["cameras"]] == [
        ("room", "room", ["rgb", "depth"], "lit", 30), ("corridor", "corridor", ["depth", "ir"], "dark", 30)]
    site = read_site_manifest(out)
    assert [c.path for c in site.cameras] == [out / "room", out / "corridor"]
    for cam in site.cameras:
        assert read_meta(cam.path).camera_id == cam.camera_id
        assert [m.value for m in read_meta(cam.path).modalities] == list(cam.modalities)
        with RecordingSource(cam.path) as src:
            items = list(src)
        assert len(items) == 30 and all(af.has_ground_truth for af in items)
        assert {a.identity for af in items for a in af.annotations} <= set(site.people)
        assert items[-1].frame.timestamp == pytest.approx(2.9)
    assert synth_main(["site", str(config), "--out", str(out)]) == 2  # exists: needs --overwrite
    assert "already exists" in capsys.readouterr().err
    assert synth_main(["site", str(config), "--out", str(out), "--overwrite", "duration_s=2"]) == 0
    assert read_site_manifest(out / SITE_FILE).cameras[0].frames == 20
    doc["version"] = 2
    (out / SITE_FILE).write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="key 'version': expected 1, got 2"):
        read_site_manifest(out)
    doc["version"], doc["cameras"][1]["dir"] = 1, "hall"
    (out / SITE_FILE).write_text(json.dumps(doc))
    with pytest.raises(FileNotFoundError, match=r"key 'cameras.1.dir'.*hall"):
        read_site_manifest(out)
