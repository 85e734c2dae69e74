"""``reid-score`` on hand-written ``frames.jsonl`` files with known answers for every identity-decision figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reidstream.pipeline.sinks.score_log import FRAMES_FILE, read_frames
from reidstream.pipeline.tools.score import format_score, main, score

BOX = {1: [0, 0, 40, 100], 2: [100, 0, 140, 100], 3: [200, 0, 240, 100]}  # one place per person, no overlap
RESTART = {"restart": True}  # the line ``reid-stream --resume`` writes where the resumed run begins


def frame(index: int, gt: dict[int, list], pred: list[tuple[str, int, list]], *, lit: bool = True,
          camera: str = "sim0") -> dict:
    """A ``frames.jsonl`` line: ``gt`` person -> box, ``pred`` (identity, track id, box)."""
    return {"frame": index, "time": index / 15, "camera": camera, "lit": lit, "detector": "depth",
            "gt": [[p, *b] for p, b in gt.items()], "pred": [[i, t, *b] for i, t, b in pred]}


def write(tmp_path: Path, lines: list[dict]) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / FRAMES_FILE).write_text("".join(json.dumps(d) + "\n" for d in lines))
    return run


def scored(tmp_path: Path, lines: list[dict]) -> dict:
    return score(read_frames(write(tmp_path, lines) / FRAMES_FILE))


def test_swap_inside_a_track_and_a_first_time_visitor_absorbed(tmp_path):
    """Track 2 follows person 2, who leaves, then person 3 who arrives at the same place: one identity, two people."""
    lines = [frame(k, {1: BOX[1], 2: BOX[2]}, [("a", 1, BOX[1]), ("b", 2, BOX[2])]) for k in range(10)]
    lines += [frame(k, {1: BOX[1], 3: BOX[2]}, [("a", 1, BOX[1]), ("b", 2, BOX[2])]) for k in range(10, 20)]
    s = scored(tmp_path, lines)
    assert (s["tracks"], s["tracks_one_person"], s["tracks_one_person_rate"]) == (2, 1, 50.0)
    assert s["track_switches"] == 1
    by_track = {t["track"]: t for t in s["track_details"]}
    assert by_track[1]["purity"] == 1.0 and by_track[2]["purity"] == 0.5 and by_track[2]["switches"] == 1
    # Persons 1 and 2 got new identities; person 3's first visit took person 2's "b".
    assert (s["first_visits"], s["first_visits_new"]) == (3, 2)
    assert s["first_visit_new_rate"] == pytest.approx(200 / 3)
    assert (s["visits"], s["false_merges"], s["merged_identities"]) == (3, 1, 1)
    absorbed = [v for v in s["visit_details"] if not v["new"] and v["first"]]
    assert absorbed == [{"person": 3, "frame": 10, "line": 11, "identity": "b", "first": True, "owner": 2,
                         "false_merge": True, "new": False}]
    assert s["returns"] == 0 and s["identities_created"] == 2


def test_track_ids_are_keyed_by_restart_segment(tmp_path):
    """After a restart (frame indices go back) track 1 is a new track: two pure tracks, no switch."""
    lines = [frame(k, {1: BOX[1]}, [("a", 1, BOX[1])]) for k in range(10)]
    lines += [RESTART] + [frame(k, {2: BOX[2]}, [("b", 1, BOX[2])]) for k in range(10)]
    frames = read_frames(write(tmp_path, lines) / FRAMES_FILE)
    assert [f.segment for f in frames] == [0] * 10 + [1] * 10
    s = score(frames)
    assert (s["tracks"], s["tracks_one_person"], s["track_switches"]) == (2, 2, 0)
    assert (s["first_visits"], s["first_visits_new"], s["false_merges"]) == (2, 2, 0)


def test_returns_by_light_one_reidentified_in_the_dark_one_not(tmp_path):
    """Persons 1 and 2 are seen lit, leave for 20 frames and come back in the dark: 1 keeps 'a', 2 gets 'c'."""
    lines = [frame(k, {1: BOX[1], 2: BOX[2]}, [("a", 1, BOX[1]), ("b", 2, BOX[2])]) for k in range(10)]
    lines += [frame(k, {}, [], lit=k < 20) for k in range(10, 30)]
    lines += [frame(k, {1: BOX[1], 2: BOX[2]}, [("a", 3, BOX[1]), ("c", 4, BOX[2])], lit=False)
              for k in range(30, 40)]
    s = scored(tmp_path, lines)
    assert (s["returns"], s["returns_reidentified"], s["reid_rate"]) == (2, 1, 50.0)
    assert s["reid_by_light"]["lit->dark"] == {"returns": 2, "reidentified": 1, "rate": 50.0}
    for key in ("lit->lit", "dark->lit", "dark->dark"):
        assert s["reid_by_light"][key] == {"returns": 0, "reidentified": 0, "rate": None}
    assert (s["cross_modal_returns"], s["cross_modal_reid_rate"]) == (2, 50.0)
    assert (s["first_visits"], s["first_visits_new"]) == (2, 2)
    assert (s["visits"], s["false_merges"], s["merged_identities"]) == (4, 0, 0)  # 'c' is new, not a merge
    assert (s["tracks"], s["tracks_one_person"], s["track_switches"]) == (4, 4, 0)
    text = format_score(s)
    assert "lit->dark 1 of 2 (50.0%)" in text and "dark->lit 0 of 0 (-)" in text
    assert "returns re-identified    1 of 2 (50.0%)" in text


def test_a_return_with_another_persons_identity_is_a_false_merge(tmp_path):
    """Both return lit: person 1 keeps 'a' (re-identified), person 2 comes back as 'a' (a false merge)."""
    lines = [frame(k, {1: BOX[1], 2: BOX[2]}, [("a", 1, BOX[1]), ("b", 2, BOX[2])]) for k in range(10)]
    lines += [frame(k, {}, []) for k in range(10, 30)]
    lines += [frame(k, {1: BOX[1], 2: BOX[2]}, [("a", 3, BOX[1]), ("d", 5, BOX[3])]) for k in range(30, 35)]
    lines += [frame(k, {2: BOX[2]}, [("a", 4, BOX[2])]) for k in range(35, 40)]
    s = scored(tmp_path, lines)
    assert s["reid_by_light"]["lit->lit"] == {"returns": 2, "reidentified": 1, "rate": 50.0}
    assert (s["visits"], s["false_merges"], s["merged_identities"]) == (4, 1, 1)
    merge = [v for v in s["visit_details"] if v["false_merge"]]
    assert [(v["person"], v["identity"], v["owner"], v["first"]) for v in merge] == [(2, "a", 1, False)]
    assert s["first_visits_new"] == 2


def test_cli_prints_the_new_lines_and_keeps_the_json_keys(tmp_path, capsys):
    lines = [frame(k, {1: BOX[1]}, [("a", 1, BOX[1])]) for k in range(5)]
    run = write(tmp_path, lines)
    assert main([str(run), "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    for label in ("IDF1", "identity switches", "returns re-identified", "in another modality / in the dark",
                  "by light", "first-time visitors new  1 of 1 (100.0%)", "false merges             0 of 1",
                  "tracks one person        1 of 1 (100.0%)", "ID switches in tracks    0"):
        assert label in out
    s = json.loads((tmp_path / "s.json").read_text())
    for key in ("frames", "gt_people", "identities_created", "IDF1", "IDP", "IDR", "ID_switches", "MOTA", "returns",
                "reid_rate", "cross_modal_returns", "cross_modal_reid_rate", "return_details", "reid_by_light",
                "first_visits", "first_visits_new", "first_visit_new_rate", "false_merges", "merged_identities",
                "tracks", "tracks_one_person", "tracks_one_person_rate", "track_switches"):
        assert key in s
    assert s["IDF1"] == pytest.approx(100.0)


def test_a_restart_ends_a_visit(tmp_path):
    """Seen lit before a restart and in the dark right after it: a lit->dark return (re-identified), not one visit."""
    lines = [frame(k, {1: BOX[1]}, [("a", 1, BOX[1])]) for k in range(10)]
    lines += [RESTART] + [frame(k, {1: BOX[1]}, [("a", 1, BOX[1])], lit=False) for k in range(10)]
    s = scored(tmp_path, lines)
    assert (s["visits"], s["returns"], s["returns_reidentified"]) == (2, 1, 1)
    assert s["reid_by_light"]["lit->dark"] == {"returns": 1, "reidentified": 1, "rate": 100.0}
    assert (s["first_visits"], s["first_visits_new"], s["false_merges"], s["merged_identities"]) == (1, 1, 0, 0)
    assert (s["tracks"], s["track_switches"]) == (2, 0)


def test_the_same_frame_twice_without_a_restart_marker_is_refused(tmp_path, capsys):
    """Two runs appended into one directory (a re-run without --overwrite) log every frame twice: an error."""
    lines = [frame(k, {1: BOX[1]}, [("a", 1, BOX[1])]) for k in range(5)]
    run = write(tmp_path, lines + lines)
    assert main([str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{run / FRAMES_FILE}, line 6: camera 'sim0' frame 0 is logged twice (first on line 1)" in err
    assert "--overwrite" in err and "--resume" in err
    with pytest.raises(ValueError, match="frame 0 is logged twice"):
        read_frames(run / FRAMES_FILE)
    (run / FRAMES_FILE).write_text("".join(json.dumps(d) + "\n" for d in [*lines, RESTART, *lines]))
    assert [f.segment for f in read_frames(run / FRAMES_FILE)] == [0] * 5 + [1] * 5  # a resumed run: fine
    other = [frame(k, {1: BOX[1]}, [("a", 1, BOX[1])], camera="sim1") for k in range(5)]
    (run / FRAMES_FILE).write_text("".join(json.dumps(d) + "\n" for d in [*lines, *other]))
    assert len(read_frames(run / FRAMES_FILE)) == 10  # the same indices of another camera are no duplicates
