"""``reid-score`` on hand-written two-camera ``frames.jsonl`` logs: multi-camera IDF1, hand-overs, per camera."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reidstream.pipeline.sinks.score_log import FRAMES_FILE, read_frames
from reidstream.pipeline.tools.score import main, score
from reidstream.pipeline.tools.score_site import score_site

BOX = {1: [0, 0, 40, 100], 2: [100, 0, 140, 100]}
# Site clock ticks (15 per second) at which each person is in view: person 1 goes room -> corridor -> room,
# person 2 room -> corridor. 10 ticks of transit; 30 ticks between person 1's room visits (> gap 15: two visits).
WHERE = {1: {"room": [range(0, 10), range(40, 50)], "corridor": [range(20, 30)]},
         2: {"room": [range(0, 10)], "corridor": [range(20, 30)]}}
TRACK = {("room", 1): 1, ("room", 2): 2, ("corridor", 1): 7, ("corridor", 2): 8}


def site_log(names: dict[tuple[str, int], str], ticks: int = 50) -> list[dict]:
    """One line per camera per tick (frame index = tick in both cameras); ``names[(camera, person)]``."""
    lines = []
    for t in range(ticks):
        for cam, lit in (("room", True), ("corridor", False)):
            people = [p for p in WHERE if any(t in r for r in WHERE[p].get(cam, []))]
            lines.append({"frame": t, "time": t / 15, "camera": cam, "lit": lit, "detector": "depth",
                          "gt": [[p, *BOX[p]] for p in people],
                          "pred": [[names[(cam, p)], TRACK[(cam, p)], *BOX[p]] for p in people]})
    return lines


def write(tmp_path: Path, lines: list[dict]) -> Path:
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / FRAMES_FILE).write_text("".join(json.dumps(d) + "\n" for d in lines))
    return run


PERFECT = {("room", 1): "a", ("corridor", 1): "a", ("room", 2): "b", ("corridor", 2): "b"}


def test_frames_are_keyed_by_camera_and_index(tmp_path):
    """Interleaved cameras with the same indices: one segment each, no duplicates; per-camera restarts."""
    lines = site_log(PERFECT)
    frames = read_frames(write(tmp_path, lines) / FRAMES_FILE)
    assert len(frames) == 100 and {f.segment for f in frames} == {0}
    assert [(f.camera, f.index, f.time) for f in frames[:3]] == [("room", 0, 0.0), ("corridor", 0, 0.0),
                                                                 ("room", 1, 1 / 15)]
    # A restarted run: every camera starts a new segment at its first frame after the marker.
    frames = read_frames(write(tmp_path, lines + [{"restart": True}] + lines) / FRAMES_FILE)
    assert {(f.camera, f.segment) for f in frames[100:]} == {("room", 1), ("corridor", 2)}
    with pytest.raises(ValueError, match="line 101: camera 'room' frame 0 is logged twice"):
        read_frames(write(tmp_path, lines + lines) / FRAMES_FILE)
    old = [{k: v for k, v in d.items() if k != "camera"} for d in lines if d["camera"] == "room"]
    frames = read_frames(write(tmp_path, old) / FRAMES_FILE)  # a log from before the camera field: readable
    assert frames[0].camera == "" and frames[0].condition == "lit"


def test_perfect_hand_overs(tmp_path):
    s = score_site(read_frames(write(tmp_path, site_log(PERFECT)) / FRAMES_FILE))
    assert s["cameras"] == ["room", "corridor"] and s["frames_by_camera"] == {"room": 50, "corridor": 50}
    assert (s["IDF1"], s["IDP"], s["IDR"]) == (100.0, 100.0, 100.0)
    assert (s["handovers"], s["handovers_correct"], s["handover_rate"]) == (3, 3, 100.0)
    assert s["handover_by_cameras"] == {"room->corridor": {"handovers": 2, "correct": 2, "rate": 100.0},
                                        "corridor->room": {"handovers": 1, "correct": 1, "rate": 100.0}}
    assert [(h["person"], h["from"], h["to"], h["frame"], h["light"]) for h in s["handover_details"]] == [
        (1, "room", "corridor", 20, "lit->dark"), (1, "corridor", "room", 40, "dark->lit"),
        (2, "room", "corridor", 20, "lit->dark")]
    room = s["per_camera"]["room"]
    assert (room["frames"], room["IDF1"], room["returns"], room["returns_reidentified"]) == (50, 100.0, 1, 1)


def test_a_switched_identity_in_the_corridor(tmp_path):
    """Person 2 is 'c' in the corridor: that hand-over fails. IDF1 by hand: 50 ground-truth and 50 predicted
    boxes; best matching 1<->a (30 frames), 2<->b (10): IDTP 40, IDF1 = 2 * 40 / (50 + 50) = 80 %."""
    names = {**PERFECT, ("corridor", 2): "c"}
    s = score_site(read_frames(write(tmp_path, site_log(names)) / FRAMES_FILE))
    assert s["IDF1"] == pytest.approx(80.0) and s["IDP"] == pytest.approx(80.0) and s["IDR"] == pytest.approx(80.0)
    assert (s["handovers"], s["handovers_correct"]) == (3, 2) and s["handover_rate"] == pytest.approx(200 / 3)
    failed = [h for h in s["handover_details"] if not h["correct"]]
    assert failed == [{"person": 2, "from": "room", "to": "corridor", "time": 20 / 15, "frame": 20,
                       "light": "lit->dark", "previous_identity": "b", "identity": "c", "correct": False}]
    assert s["handover_by_cameras"]["room->corridor"] == {"handovers": 2, "correct": 1, "rate": 50.0}
    assert s["identities_created"] == 3
    # Each camera alone is consistent: the failure only shows across cameras.
    assert s["per_camera"]["corridor"]["IDF1"] == 100.0 and s["per_camera"]["room"]["IDF1"] == 100.0


def test_cli_scores_several_cameras_and_keeps_one_camera_output(tmp_path, capsys):
    run = write(tmp_path, site_log({**PERFECT, ("corridor", 2): "c"}))
    assert main([str(run), "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "multi-camera IDF1        80.0%" in out and "hand-overs correct       2 of 3 (66.7%)" in out
    assert "room->corridor 1 of 2 (50.0%)" in out and "camera corridor:" in out
    assert json.loads((tmp_path / "s.json").read_text())["handovers_correct"] == 2
    one = tmp_path / "one"
    one.mkdir()
    (one / FRAMES_FILE).write_text((run / FRAMES_FILE).read_text().split("\n", 1)[0] + "\n")
    assert main([str(one)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("frames scored            1\n") and "hand-overs" not in out
    with pytest.raises(ValueError, match="two or more cameras"):
        score_site(read_frames(one / FRAMES_FILE))
    assert score(read_frames(one / FRAMES_FILE))["frames"] == 1
