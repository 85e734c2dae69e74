"""Several cameras into one gallery: the site config, the merged source, batched embedding and a real site run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from reidstream.pipeline.app.site import SiteConfig, cameras_from_args
from reidstream.pipeline.app.stream import DEFAULT_BUNDLE
from reidstream.pipeline.bundle import load_bundle
from reidstream.pipeline.config import ConfigError, config_from_mapping, load_config
from reidstream.pipeline.crops import cut_crops
from reidstream.pipeline.embed.stage import EmbedStage
from reidstream.pipeline.multicam import SiteSource
from reidstream.pipeline.recording import record
from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.sources.base import AnnotatedFrame
from reidstream.pipeline.sources.sim import SimSource
from reidstream.pipeline.types import Detections

REPO = Path(__file__).resolve().parents[3]


def site(data: dict) -> SiteConfig:
    return config_from_mapping(SiteConfig, data, "<site>")


def sim_frames(n: int, seed: int = 1, **extra) -> list[AnnotatedFrame]:
    cfg = config_from_mapping(SimConfig, {"seed": seed, "modalities": ["rgb", "depth"], **extra}, "<test>")
    return list(SimSource.from_config(cfg, max_frames=n))


# ------------------------------------------------------------------ config
def test_site_config_gives_each_camera_its_own_sections():
    cfg = site({"cameras": [{"id": "room", "source": {"camera": "sim"}},
                            {"id": "hall", "source": {"camera": "recording", "uri": "x"},
                             "detector": {"kind": "depth"}}],
                "gallery": {"max_identities": 50}})
    room, hall = cfg.camera("room"), cfg.camera("hall")
    assert room.source.camera == "sim" and hall.source.uri == "x"
    assert hall.detector.kind == "depth" and room.detector.kind == cfg.detector.kind
    assert room.gallery.max_identities == hall.gallery.max_identities == 50
    with pytest.raises(KeyError, match="no camera 'door'"):
        cfg.camera("door")


@pytest.mark.parametrize("data, message", [
    ({"cameras": []}, "cameras"),
    ({"cameras": [{"id": "a", "source": {}}, {"id": "a", "source": {}}]}, "distinct camera ids, got a"),
    ({"cameras": [{"id": "a b", "source": {}}]}, "cameras.0.id"),
    ({"cameras": [{"id": "a", "source": {}, "gallery": {}}]}, "unknown key"),
    ({"cameras": [{"id": "a", "source": {}}], "source": {"camera": "sim"}}, "remove the top-level source"),
    ({"cameras": [{"id": "a", "source": {"camera": "usb"}}]}, "cameras.0.source.camera"),
])
def test_site_config_refuses_bad_sites(data, message):
    with pytest.raises(ConfigError, match=message):
        site(data)


def test_example_site_config_loads():
    cfg = load_config(SiteConfig, REPO / "configs/site/two-cameras.yaml")
    assert [c.id for c in cfg.cameras] == ["room", "corridor"]


def test_cameras_from_repeated_options_get_unique_ids(tmp_path):
    (tmp_path / "hall").mkdir()
    cams, links = cameras_from_args(["sim", "sim"], [tmp_path / "hall", tmp_path / "hall"])
    assert links == []
    assert [c["id"] for c in cams] == ["sim0", "sim1", "hall", "hall-1"]
    with pytest.raises(ValueError, match="--replay .*clip.txt: expected"):
        cameras_from_args([], [tmp_path / "clip.txt"])


# ------------------------------------------------------------------ merged source
def test_site_source_merges_cameras_in_time_order_and_names_them():
    a, b = sim_frames(6, seed=1), sim_frames(4, seed=2)
    rounds = list(SiteSource({"a": a, "b": b}, window_s=0.01))
    got = [(item.frame.camera_id, item.frame.index) for r in rounds for item in r]
    assert sorted(got) == sorted([("a", f.frame.index) for f in a] + [("b", f.frame.index) for f in b])
    assert all(len({item.frame.camera_id for item in r}) == len(r) for r in rounds)  # one frame per camera
    stamps = [min(item.frame.timestamp for item in r) for r in rounds]
    assert stamps == sorted(stamps)
    assert len(rounds[0]) == 2  # both cameras start at the same time: one round


class _Broken:
    """A camera whose driver fails after two frames."""

    def __init__(self, frames):
        self.frames = frames

    def __iter__(self):
        yield from self.frames[:2]
        raise OSError("USB device disconnected")


def test_a_failing_camera_does_not_stop_the_others(capsys):
    source = SiteSource({"good": sim_frames(5, seed=1), "bad": _Broken(sim_frames(5, seed=2))})
    got = [item.frame.camera_id for r in source for item in r]
    assert got.count("good") == 5 and got.count("bad") == 2
    assert [f.camera_id for f in source.failures] == ["bad"]
    assert "camera bad failed: OSError: USB device disconnected; the other cameras go on" in capsys.readouterr().err


def test_site_source_contract():
    with pytest.raises(ValueError, match="at least one camera"):
        SiteSource({})
    with pytest.raises(ValueError, match="window_s >= 0"):
        SiteSource({"a": []}, window_s=-1)


# ------------------------------------------------------------------ batched embedding
def test_embed_many_equals_one_frame_at_a_time():
    stage = EmbedStage.from_bundle(load_bundle(DEFAULT_BUNDLE))
    crops = []
    for seed, n in ((1, 2), (2, 3)):
        item = sim_frames(1, seed=seed)[0]
        h, w = item.frame.rgb.shape[:2]
        boxes = np.array([[40 + 60 * i, 100, 100 + 60 * i, 300] for i in range(n)], np.float32)
        dets = Detections(boxes, np.ones(n, np.float32), np.arange(n) + 10 * seed)
        crops.append(cut_crops(item.frame, dets))
    crops.append(cut_crops(item.frame, Detections.empty()))
    many = stage.embed_many(crops)
    assert len(many) == 3 and many[2] == []
    for c, batched in zip(crops[:2], many[:2]):
        alone = stage(c)
        assert [(e.space, e.modality) for e in batched] == [(e.space, e.modality) for e in alone]
        for x, y in zip(batched, alone):
            assert np.array_equal(x.track_ids, y.track_ids)
            np.testing.assert_allclose(x.vectors, y.vectors, atol=2e-5)


# ------------------------------------------------------------------ a real site run
def cli(*args, check=True):
    r = subprocess.run([shutil.which("reid-stream"), *map(str, args)], capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def two_recordings(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("site")
    out = []
    for name, seed, extra in (("room", 3, {}), ("corridor", 5, {"lighting": {"level": 0.02}})):
        cfg = config_from_mapping(SimConfig, {"seed": seed, "modalities": ["rgb", "depth", "ir"],
                                              "crowd": {"people": 2}, **extra}, "<test>")
        record(SimSource.from_config(cfg, max_frames=40), root / name, max_frames=40)
        out.append(root / name)
    return out


def test_two_replays_run_into_one_gallery_with_outputs_per_camera(two_recordings, tmp_path):
    out = tmp_path / "run"
    r = cli("--replay", two_recordings[0], "--replay", two_recordings[1], "--output", out)
    assert "site of 2 cameras: room, corridor" in r.stderr
    for cam in ("room", "corridor"):
        assert (out / f"tracks-{cam}.txt").is_file() and (out / f"gt-{cam}.txt").is_file()
    assert not (out / "tracks.txt").exists()
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert {e["camera"] for e in events} == {"room", "corridor"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_processed"] == 80 and summary["frames_read"] == 80
    assert {c: s["frames_processed"] for c, s in summary["cameras"].items()} == {"room": 40, "corridor": 40}
    assert summary["camera_failures"] == {}
    # one gallery: identity names are unique across the cameras
    new = [e["identity"] for e in events if e["kind"] == "new"]
    assert len(new) == len(set(new)) and new
    # the same directory again is refused, naming the per-camera files
    again = cli("--replay", two_recordings[0], "--replay", two_recordings[1], "--output", out, check=False)
    assert again.returncode == 2 and "tracks-room.txt" in again.stderr


def test_several_cameras_refuse_one_camera_options(two_recordings):
    r = cli("--replay", two_recordings[0], "--replay", two_recordings[1], "--uri", "0", check=False)
    assert r.returncode == 2 and "--uri / --serial name one camera" in r.stderr


def test_a_worker_runs_some_cameras_and_knows_every_link():
    cfg = site({"cameras": [{"id": "room", "source": {}}, {"id": "corridor", "source": {}}],
                "links": [{"between": ["room", "corridor"], "transit_s": [3, 8]}], "run": ["corridor"]})
    assert cfg.running == ["corridor"]
    assert cfg.topology().transit("room", "corridor") == (3.0, 8.0)
    with pytest.raises(ConfigError, match="expected some of the cameras"):
        site({"cameras": [{"id": "room", "source": {}}], "run": ["hall"]})
    with pytest.raises(ConfigError, match=r"links\[0\]\.between: hall is not one of the cameras"):
        site({"cameras": [{"id": "room", "source": {}}], "links": [{"between": ["room", "hall"], "transit_s": [1, 2]}]})
    with pytest.raises(ConfigError, match="transit_s"):
        site({"cameras": [{"id": "a", "source": {}}, {"id": "b", "source": {}}],
              "links": [{"between": ["a", "b"], "transit_s": [5, 2]}]})


def test_a_recorded_site_brings_its_links(tmp_path):
    from reidstream.pipeline.recording import META_FILE
    from reidstream.pipeline.sim.site import SITE_FORMAT, SITE_VERSION

    for cam in ("room", "corridor"):
        (tmp_path / cam).mkdir()
        (tmp_path / cam / META_FILE).write_text("{}")
    doc = {"format": SITE_FORMAT, "version": SITE_VERSION,
           "cameras": [{"id": "room", "dir": "room", "modalities": ["rgb", "depth"]},
                       {"id": "corridor", "dir": "corridor", "modalities": ["ir", "depth"]}],
           "links": [{"between": ["room", "corridor"], "transit_s": [3.0, 8.0]}]}
    (tmp_path / "site.json").write_text(json.dumps(doc))
    cams, links = cameras_from_args([], [tmp_path])
    assert [c["id"] for c in cams] == ["room", "corridor"]
    assert cams[1]["source"] == {"camera": "recording", "uri": str(tmp_path / "corridor")}
    assert links == [{"between": ["room", "corridor"], "transit_s": [3.0, 8.0]}]
    (tmp_path / "site.json").write_text(json.dumps({**doc, "links": [{"between": ["room"]}]}))
    with pytest.raises(ValueError, match="site.json: expected 'links'"):
        cameras_from_args([], [tmp_path])


def test_source_overrides_and_max_frames_apply_to_every_camera(tmp_path):
    from reidstream.pipeline.app.cli import site_config_from_args, stream_parser
    from reidstream.pipeline.config import parse_args_with_overrides

    f = tmp_path / "site.yaml"
    f.write_text("cameras:\n  - {id: a, source: {camera: sim}}\n  - {id: b, source: {camera: sim, fps: 10}}\n")
    args = parse_args_with_overrides(stream_parser(), ["--site", str(f), "--max-frames", "7", "source.realtime=true",
                                                       "gallery.max_identities=9"])
    cfg = site_config_from_args(args)
    assert [(c.source.realtime, c.source.max_frames, c.source.fps) for c in cfg.cameras] == \
        [(True, 7, 30), (True, 7, 10)]
    assert cfg.gallery.max_identities == 9
    bad = parse_args_with_overrides(stream_parser(), ["--site", str(f), "source.fsp=3"])
    with pytest.raises(ConfigError, match="fsp"):
        site_config_from_args(bad)


def test_a_recorded_site_replays_into_one_gallery_and_links_carry_people_across(small_site, tmp_path):
    """The recorded two-room site in one process: multi-camera scoring, and a person who walks from the lit room
    into the dark corridor keeps their identity, with the site's links at least as often as without."""
    scores = {}
    for name, extra in (("links", []), ("no-links", ["transit.llr=0", "transit.too_soon_llr=0"])):
        out = tmp_path / name
        r = cli("--replay", small_site, "--output", out, *extra)
        assert "site of 2 cameras: room, corridor" in r.stderr
        subprocess.run([shutil.which("reid-score"), str(out), "--json", str(tmp_path / f"{name}.json")], check=True,
                       capture_output=True, timeout=120)
        scores[name] = json.loads((tmp_path / f"{name}.json").read_text())
    s = scores["links"]
    assert s["cameras"] == ["room", "corridor"] and s["handovers"] >= 2
    assert {d["from"] for d in s["handover_details"]} == {"room", "corridor"}
    print({k: (v["handovers_correct"], v["handovers"], round(v["IDF1"], 1)) for k, v in scores.items()})
    # measured: 2 of 3 hand-overs with links against 1 of 3 without before the calibrated dark threshold and
    # track cuts; since then the evidence alone carries these two people too (2 of 3 both ways), and the links
    # must not cost any: the multi-camera figures of the README show where they still add (held-out sites)
    assert s["handovers_correct"] >= 2 and s["handovers_correct"] >= scores["no-links"]["handovers_correct"]
    assert s["IDF1"] >= scores["no-links"]["IDF1"]
