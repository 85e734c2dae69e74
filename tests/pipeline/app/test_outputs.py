"""The ``reid-stream --output`` directory: never a recording, never a second run appended by accident."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reidstream.pipeline.app.cli import stream_main
from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.recording import record
from reidstream.pipeline.app.outputs import check_output_dir, clear_outputs, run_outputs
from reidstream.pipeline.tools.score import main as score_main
from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.sources.sim import SimSource

SIM = ["--camera", "sim", "--max-frames", "3", "source.realtime=false"]


@pytest.fixture
def recording(tmp_path) -> Path:
    cfg = config_from_mapping(SimConfig, {"seed": 2, "modalities": ["rgb", "depth"], "crowd": {"people": 1}}, "<test>")
    path = tmp_path / "rec"
    record(SimSource.from_config(cfg, max_frames=3), path, max_frames=3)
    return path


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_replay_into_the_recording_itself_is_refused(recording, capsys):
    before = snapshot(recording)
    assert stream_main(["--replay", str(recording), "--output", str(recording)]) == 2
    assert f"--output {recording} is the recording being replayed" in capsys.readouterr().err
    assert snapshot(recording) == before  # its frames.jsonl is untouched


def test_output_into_another_recording_is_refused_even_with_overwrite(recording, capsys):
    before = snapshot(recording)
    assert stream_main([*SIM, "--output", str(recording)]) == 2
    err = capsys.readouterr().err
    assert f"--output {recording}: holds a recording ({recording / 'recording.json'})" in err
    assert snapshot(recording) == before
    assert stream_main([*SIM, "--output", str(recording), "--overwrite"]) == 2
    assert "never replaces a recording" in capsys.readouterr().err
    assert snapshot(recording) == before


def test_a_second_run_into_the_same_output_is_refused_unless_overwrite_or_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert stream_main([*SIM, "--output", str(out)]) == 0
    first = snapshot(out)
    capsys.readouterr()
    assert stream_main([*SIM, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--output {out}: already holds the outputs of a run (" in err
    assert "events.jsonl" in err and "frames.jsonl" in err and "--overwrite" in err and "--resume" in err
    assert snapshot(out) == first  # nothing appended

    assert stream_main([*SIM, "--output", str(out), "--overwrite"]) == 0  # a fresh start
    err = capsys.readouterr().err
    assert "gallery reloaded" not in err and "--overwrite: deleted the earlier run's" in err
    assert [json.loads(x)["frame"] for x in (out / "frames.jsonl").read_text().splitlines()] == [0, 1, 2]

    assert stream_main([*SIM, "--output", str(out), "--resume"]) == 0  # a restart: identities kept, logs appended
    assert f"gallery reloaded from {out / 'gallery.npz'}" in capsys.readouterr().err
    lines = [json.loads(x) for x in (out / "frames.jsonl").read_text().splitlines()]
    assert lines[3] == {"restart": True} and [d["frame"] for d in lines[:3] + lines[4:]] == [0, 1, 2] * 2
    assert score_main([str(out)]) == 0  # two restart segments, not frames logged twice


def test_resume_or_overwrite_needs_an_output_directory(capsys):
    assert stream_main([*SIM, "--resume"]) == 2
    assert "--resume needs an output directory (--output DIR)" in capsys.readouterr().err


def test_check_and_clear_touch_run_outputs_only(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert check_output_dir(out) == [] and check_output_dir(tmp_path / "new") == []
    (out / "events.jsonl").write_text("{}\n")
    (out / "gallery.npz").write_bytes(b"x")
    with pytest.raises(FileExistsError, match=r"already holds the outputs of a run \(events.jsonl, gallery.npz\)"):
        check_output_dir(out)
    assert check_output_dir(out, "resume") == check_output_dir(out, "overwrite") == ["events.jsonl", "gallery.npz"]
    clear_outputs(out, run_outputs(out))
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    with pytest.raises(ValueError, match="'notes.txt' is not a run output"):
        clear_outputs(out, ["notes.txt"])
    with pytest.raises(ValueError, match="output.existing: expected one of refuse, overwrite, resume"):
        check_output_dir(out, "append")
