"""``reid-stream-eval`` end to end on a tiny two-part sequence (lit, then restart in the dark), and its commands."""

from __future__ import annotations

import json

import pytest

from reidstream.pipeline.eval.suite import SEQUENCES, is_complete, main, parts, render
from reidstream.pipeline.sinks.score_log import FRAMES_FILE, read_frames

FRAMES = 30


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    work = tmp_path_factory.mktemp("eval")
    code = main(["--sequences", "lit-then-dark", "--seeds", "11", "--work", str(work), "--frames", str(FRAMES),
                 "--json", str(work / "out.json")])
    return work, code


def test_tiny_sequence_end_to_end(evaluated):
    work, code = evaluated
    assert code == 0
    s = json.loads((work / "out.json").read_text())
    assert s["sequences"]["lit-then-dark"] == SEQUENCES["lit-then-dark"] and s["frames"] == FRAMES
    (row,) = s["runs"]
    assert (row["sequence"], row["seed"], row["frames"]) == ("lit-then-dark", 11, 2 * FRAMES)
    for key in ("IDF1", "identities_created", "gt_people", "returns", "reid_rate", "reid_by_light",
                "first_visits_new", "first_visits", "tracks_one_person", "tracks", "false_merges", "pipeline_fps"):
        assert key in row
    assert 0 <= row["IDF1"] <= 100 and row["gt_people"] >= 1  # quality is the pipeline's, not tested here
    assert any(c.startswith("reid-stream --replay") for c in row["commands"])
    # The restart protocol: the dark part was appended to the lit part's frames.jsonl, frame indices restarting.
    run = work / "runs" / "lit-then-dark-s11"
    frames = read_frames(run / FRAMES_FILE)
    assert [f.segment for f in frames] == [0] * FRAMES + [1] * FRAMES
    assert (run / "gallery.npz").is_file() and (run / "score.txt").is_file()


def test_table_has_the_figures(evaluated, capsys):
    work, _ = evaluated
    main(["--sequences", "lit-then-dark", "--seeds", "11", "--work", str(work), "--frames", str(FRAMES)])
    out = capsys.readouterr()
    header, rule, row = out.out.splitlines()
    for column in ("IDF1", "identities / people", "returns re-id", "lit->dark", "first-time new", "tracks 1 person",
                   "false merges"):
        assert column in header
    assert row.startswith("lit-then-dark  11") and "%" in row
    assert "cached" in out.err and "rendered" not in out.err  # the recordings were reused


def test_recordings_are_rendered_again_when_parameters_change(evaluated):
    work, _ = evaluated
    ps = parts("lit-then-dark", 11, work, FRAMES)
    assert all(is_complete(p) for p in ps) and not render(ps[0], print)
    assert not is_complete(parts("lit-then-dark", 11, work, FRAMES + 1)[0])


def test_print_commands(tmp_path, capsys):
    assert main(["--sequences", "day-night", "lit-then-dark", "--seeds", "3", "--work", "w", "--bundle", "b",
                 "--set", "gallery.threshold=0.3", "--print-commands"]) == 0
    out = capsys.readouterr().out
    assert ("reid-synth sequence w/recordings/day-night-s3 --frames 1800 --config configs/sim/day-night.yaml seed=3 "
            "crowd.population_seed=7 crowd.people=4 camera.fps=15 lighting.period_s=40 crowd.return_prob=0.6") in out
    assert "seed=1003" in out and "lighting.level=0.02" in out and "crowd.population=8" in out
    assert ("reid-stream --replay w/recordings/lit-then-dark-s3/lit --output w/runs/lit-then-dark-s3 --bundle b "
            "gallery.threshold=0.3") in out  # the first part starts the run afresh
    assert ("reid-stream --replay w/recordings/lit-then-dark-s3/dark --output w/runs/lit-then-dark-s3 --resume "
            "--bundle b gallery.threshold=0.3") in out  # the second continues it
    assert "reid-score w/runs/lit-then-dark-s3" in out
    assert not (tmp_path / "w").exists()


def test_a_bad_override_is_named(tmp_path, capsys):
    assert main(["--sequences", "lit", "--seeds", "1", "--work", str(tmp_path), "--set", "gallery.treshold=1"]) == 2
    assert "gallery.treshold" in capsys.readouterr().err
    assert not (tmp_path / "recordings").exists()
