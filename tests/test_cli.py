"""The console scripts as a user runs them (installed entry points, real files)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import cv2
import pytest

from reidstream.pipeline.sources.recording import RecordingSource

SCRIPTS = ["reid-stream", "reid-train", "reid-eval", "reid-export", "reid-record", "reid-synth", "reid-vi-report",
           "reid-score", "reid-stream-bench"]


def run(*args, check=False):
    exe = shutil.which(args[0])
    assert exe, f"{args[0]} is not installed: run pip install -e ."
    return subprocess.run([exe, *args[1:]], capture_output=True, text=True, timeout=300, check=check)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_explains_itself(script):
    r = run(script, "--help")
    assert r.returncode == 0
    assert f"usage: {script}" in r.stdout and len(r.stdout) > 300


def test_stream_sim_help_lists_sources():
    r = run("reid-stream", "--camera", "sim", "--help")
    assert r.returncode == 0 and "realsense" in r.stdout and "--replay" in r.stdout


def test_stream_runs_the_simulated_camera_with_the_embedded_bundle(tmp_path):
    """The README's main command, shortened: no camera, no download."""
    r = run("reid-stream", "--camera", "sim", "--max-frames", "20", "source.realtime=false", "--output",
            str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "frames" in r.stdout and (tmp_path / "out" / "events.jsonl").is_file()


def test_preview_writes_mosaic(tmp_path):
    out = tmp_path / "preview.png"
    r = run("reid-synth", "preview", "--out", str(out), "--frames", "2", "--every", "3", "crowd.people=2")
    assert r.returncode == 0, r.stderr
    img = cv2.imread(str(out))
    assert img is not None and img.shape[1] == 4 * 320 and img.shape[0] > 2 * 240


def test_bad_override_is_named():
    r = run("reid-synth", "preview", "crowd.peeple=2")
    assert r.returncode == 2 and "crowd.peeple" in r.stderr and "unknown key" in r.stderr


def test_sequence_then_truncated_replay(tmp_path):
    seq = tmp_path / "seq"
    r = run("reid-synth", "sequence", str(seq), "--frames", "6", "crowd.people=2",
            "camera.width=160", "camera.height=120")
    assert r.returncode == 0, r.stderr
    with RecordingSource(seq) as src:
        items = list(src)
    assert len(items) == 6 and all(i.has_ground_truth for i in items)
    assert items[0].frame.rgb.shape == (120, 160, 3)
    # Cut the recording off mid-write: the last index line loses its tail, the last depth PNG half its bytes.
    index = seq / "frames.jsonl"
    lines = index.read_bytes().splitlines(keepends=True)
    index.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    depth_5 = seq / json.loads(lines[4])["files"]["depth"]
    depth_5.write_bytes(depth_5.read_bytes()[: depth_5.stat().st_size // 2])
    with pytest.warns(UserWarning):
        with RecordingSource(seq) as src:
            replayed = list(src)
    assert [i.frame.index for i in replayed] == [0, 1, 2, 3]
    for a, b in zip(items, replayed):
        assert (a.frame.depth == b.frame.depth).all() and a.annotations == b.annotations


def test_record_sim_camera(tmp_path):
    out = tmp_path / "rec"
    r = run("reid-record", str(out), "--camera", "sim", "--frames", "3", "camera.width=96", "camera.height=72")
    assert r.returncode == 0, r.stderr
    assert len(RecordingSource(out)) == 3
    r = run("reid-record", str(out), "--camera", "sim", "--frames", "3")
    assert r.returncode == 2 and str(out) in r.stderr  # refuses to overwrite


def test_bench_prints_figures():
    r = run("reid-synth", "bench", "--frames", "3", "--warmup", "1", "--people", "0,2",
            "camera.width=160", "camera.height=120")
    assert r.returncode == 0, r.stderr
    assert "people=0" in r.stdout and "people=2" in r.stdout and "frames/s" in r.stdout


def test_package_is_namespaced():
    r = subprocess.run([sys.executable, "-c", "import pipeline"], capture_output=True, text=True, cwd="/")
    assert r.returncode != 0  # no generic top-level module is installed
    import reidstream.export
    import reidstream.pipeline
    import reidstream.training

    assert reidstream.pipeline.Frame is not None and reidstream.training and reidstream.export


def test_train_names_missing_config_and_bad_key(tmp_path):
    r = run("reid-train", "--config", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2 and "nope.yaml" in r.stderr
    r = run("reid-train", "--config", "configs/train/synthetic-depth-step1.yaml", "method.los=triplet")
    assert r.returncode == 2 and "method.los" in r.stderr and "loss" in r.stderr


def test_train_names_missing_dataset(tmp_path):
    r = run("reid-train", "--config", "configs/train/synthetic-depth-step1.yaml", f"data.root={tmp_path / 'none'}",
            f"output={tmp_path / 'run'}")
    assert r.returncode == 1 and str(tmp_path / "none") in r.stderr


def test_eval_names_missing_or_foreign_checkpoint(tmp_path):
    r = run("reid-eval", str(tmp_path / "ckpt.pt"))
    assert r.returncode == 1 and "ckpt.pt" in r.stderr and "not found" in r.stderr
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    r = run("reid-eval", str(bad))
    assert r.returncode == 1 and "bad.pt" in r.stderr


def test_record_from_an_opencv_video_file(tmp_path):
    """reid-record records any camera source: here a video file read as the colour stream (real OpenCV I/O)."""
    import numpy as np

    video = tmp_path / "in.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(6):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    out = tmp_path / "rec"
    r = run("reid-record", str(out), "--camera", "video", "--uri", str(video), "--frames", "4")
    assert r.returncode == 0, r.stderr[-2000:]
    frames = list(RecordingSource(out))
    assert len(frames) == 4 and frames[0].frame.rgb.shape == (48, 64, 3)
    r = run("reid-record", str(tmp_path / "rec2"), "--camera", "video", "--uri", str(tmp_path / "missing.avi"))
    assert r.returncode == 2 and "missing.avi" in r.stderr
