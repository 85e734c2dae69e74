"""``reid-stream`` counts every frame it reads: processed, or dropped by reason (issue #13), in the progress
line, the printed summary and summary.json. Real recordings of the simulator, the embedded bundle."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reidstream.pipeline.app.cli import stream_main
from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.recording import record
from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.sources.sim import SimSource

FRAMES = 30


@pytest.fixture(scope="module")
def fast_recording(tmp_path_factory) -> Path:
    """30 frames recorded at 240 fps: replayed at recorded speed, the pipeline cannot keep up."""
    cfg = config_from_mapping(SimConfig, {"seed": 3, "camera": {"fps": 240}, "modalities": ["rgb", "depth"],
                                          "crowd": {"people": 2}}, "<test>")
    path = tmp_path_factory.mktemp("rec") / "fast"
    record(SimSource.from_config(cfg, max_frames=FRAMES), path, max_frames=FRAMES)
    return path


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_realtime_replay_reports_the_frames_it_drops(fast_recording, tmp_path, capsys):
    out = tmp_path / "out"
    assert stream_main(["--replay", str(fast_recording), "--output", str(out), "source.realtime=true",
                        "buffer.maxsize=1"]) == 0
    s = _summary(out)
    dropped = s["frames_dropped"]
    assert s["frames_read"] == FRAMES
    assert s["frames_read"] == s["frames_processed"] + sum(dropped.values())
    assert dropped["realtime"] > 0 and s["frames_processed"] < FRAMES
    assert s["frames_processed"] == s["frames"]
    captured = capsys.readouterr()
    assert (f"source      {FRAMES} frames read, {s['frames_processed']} processed, {sum(dropped.values())} "
            f"dropped (realtime {dropped['realtime']}") in captured.out
    assert re.search(r"reid-stream: frame \d+: .*; frames read \d+, dropped \d+", captured.err), captured.err


def test_replay_without_drops_reports_zero_dropped(fast_recording, tmp_path, capsys):
    out = tmp_path / "out"
    assert stream_main(["--replay", str(fast_recording), "--output", str(out), "source.realtime=false"]) == 0
    s = _summary(out)
    assert s["frames_read"] == s["frames_processed"] == FRAMES
    assert s["frames_dropped"] == {"buffer_full": 0, "realtime": 0, "at_stop": 0, "unreadable": 0}
    assert f"source      {FRAMES} frames read, {FRAMES} processed, 0 dropped\n" in capsys.readouterr().out


def test_a_run_stopped_by_max_frames_counts_the_frames_left_in_the_buffer(fast_recording, tmp_path):
    out = tmp_path / "out"
    assert stream_main(["--replay", str(fast_recording), "--output", str(out), "--max-frames", "5",
                        "source.realtime=false"]) == 0
    s = _summary(out)
    assert s["frames_processed"] == 5
    assert s["frames_read"] == 5 + sum(s["frames_dropped"].values())
