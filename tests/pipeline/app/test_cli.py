"""``reid-stream`` as a user runs it: video files end, SIGTERM keeps the outputs, config mistakes are explained."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from reidstream.pipeline.app.cli import stream_main
from reidstream.pipeline.gallery import load_gallery

REPO = Path(__file__).resolve().parents[3]


def exe(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: run pip install -e ."
    return path


@pytest.fixture(scope="module")
def yolo_pt(tmp_path_factory) -> Path:
    """An untrained YOLO built from its yaml (wiring only, no weights here): a colour detector that lets a
    colour-only source start (the embedded bundle detects people in depth only)."""
    ultralytics = pytest.importorskip("ultralytics", reason="needs ultralytics: pip install 'reid-stream[detect]'")
    model = ultralytics.YOLO("yolov8n.yaml")
    model.model.names = {0: "person", **{i: f"class{i}" for i in range(1, 80)}}
    path = tmp_path_factory.mktemp("yolo") / "yolo.pt"
    model.save(str(path))
    return path


def test_video_file_run_ends_at_the_end_of_the_file(tmp_path, yolo_pt):
    video, out = tmp_path / "clip.mp4", tmp_path / "out"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    for i in range(20):
        img = np.full((240, 320, 3), 40, np.uint8)
        cv2.rectangle(img, (10 + 8 * i, 40), (60 + 8 * i, 220), (200, 120, 60), -1)
        writer.write(img)
    writer.release()
    r = subprocess.run([exe("reid-stream"), "--camera", "video", "--uri", str(video), "--output", str(out),
                        f"detector.yolo={yolo_pt}"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "reconnect" not in r.stderr, r.stderr[-3000:]
    assert r.stderr.count("trained on synthetic people") == 1  # a video is no simulator: warned once
    assert re.search(r"^frames\s+20 in", r.stdout, re.M), r.stdout
    assert json.loads((out / "summary.json").read_text())["frames_processed"] == 20


def test_sigterm_finishes_the_outputs_like_ctrl_c(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([exe("reid-stream"), "--camera", "sim", "--output", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 180
        while not any("frame 25:" in line for line in lines):  # 26 frames processed
            assert proc.poll() is None, "".join(lines)[-3000:]
            assert time.monotonic() < deadline, "no frame processed in time: " + "".join(lines)[-3000:]
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        stdout = proc.stdout.read()
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    err = "".join(lines)
    assert rc == 0, err[-3000:]
    assert "terminated (SIGTERM); finishing the outputs" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_processed"] >= 26 and "frames" in stdout
    gallery = load_gallery(out / "gallery.npz")  # saved at the end, after the tracks still pending are decided
    assert len(gallery) >= 1
    id_map = json.loads((out / "tracks.txt.ids.json").read_text())  # the MOT id map: identity -> MOT id
    assert id_map["ids"] and set(id_map["ids"]) <= set(gallery.identities())
    assert (out / "tracks.txt").is_file() and (out / "events.jsonl").is_file()


def test_sim_world_config_given_as_stream_config_is_explained(capsys):
    dark = REPO / "configs" / "sim" / "dark.yaml"
    assert stream_main(["--config", str(dark)]) == 2
    err = capsys.readouterr().err
    assert f"source.sim={dark}" in err and "simulator world config" in err and "lighting" in err


def test_unknown_stream_key_gets_no_sim_hint(tmp_path, capsys):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text("gallery:\n  threshhold: 3\n")
    assert stream_main(["--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "gallery.threshhold" in err and "source.sim" not in err


def test_binary_config_names_the_file(tmp_path, capsys):
    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    cfg = tmp_path / "photo.yaml"
    cfg.write_bytes(png.tobytes())
    assert stream_main(["--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and "expected a YAML config" in err and "Traceback" not in err


@pytest.mark.parametrize("override", ["gallery.max_visits_per_identity=100000000",
                                      "gallery.max_identities=100000000000", "buffer.maxsize=100000000"])
def test_huge_sizes_are_refused_before_anything_runs(override, capsys):
    assert stream_main([override, "--max-frames", "1", "source.realtime=false"]) == 2  # 0 had it run
    err = capsys.readouterr().err
    assert override.split("=")[0] in err and "less than or equal to" in err
