"""``reid-stream`` on real inputs, through its main(): colour-only sources, the synthetic-bundle warning,
recordings with missing or corrupt frames. Real files (an mp4 written by OpenCV, recordings), the embedded bundle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from reidstream.pipeline.app.stream import DEFAULT_BUNDLE, synthetic_bundle_warning
from reidstream.pipeline.bundle import load_bundle
from reidstream.pipeline.app.cli import EXIT_SKIPPED, stream_main, stream_parser
from reidstream.pipeline.config import config_from_mapping, load_config
from reidstream.pipeline.recording import RecordingWriter
from reidstream.pipeline.app.config import StreamConfig
from reidstream.pipeline.types import Frame, Intrinsics

SYNTHETIC = "trained on synthetic people"


def write_video(path: Path, frames: int = 5) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    for i in range(frames):
        img = np.full((240, 320, 3), 40, np.uint8)
        cv2.rectangle(img, (10 + 8 * i, 40), (60 + 8 * i, 220), (200, 120, 60), -1)
        writer.write(img)
    writer.release()
    assert path.stat().st_size > 0
    return path


def camera_recording(path: Path, frames: int = 3) -> Path:
    """A colour + depth recording that does not come from the simulator (as a RealSense would give)."""
    w, h = 160, 120
    with RecordingWriter(path, camera_id="desk", intrinsics=Intrinsics(w, h, 150.0, 150.0, 79.5, 59.5),
                         modalities=("rgb", "depth"), fps=15, source="RealSenseSource (D435 desk)") as writer:
        for i in range(frames):
            writer.write(Frame(rgb=np.full((h, w, 3), 120, np.uint8), depth=np.full((h, w), 3000, np.uint16),
                               index=i, timestamp=i / 15))
    return path


@pytest.fixture(scope="module")
def sim_recording(make_sim_recording) -> Path:
    """Six frames of the simulated camera with ground truth (a recording of the simulator)."""
    return make_sim_recording(6, seed=3, people=2)


def test_colour_only_video_with_the_default_bundle_is_refused_at_start(tmp_path, capsys):
    """The embedded bundle detects people in depth: on an mp4 it would detect nobody, silently."""
    video, out = write_video(tmp_path / "clip.mp4"), tmp_path / "out"
    assert stream_main(["--camera", "video", "--uri", str(video), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"source video {video} delivers rgb frames only" in err
    assert "embedded default bundle" in err and "no YOLO detector" in err
    assert "detector.yolo=yolo11n.pt" in err and "--bundle DIR with a detector" in err and "source with depth" in err
    assert not out.exists()  # refused before anything is written


def test_default_bundle_on_a_camera_recording_warns_once_at_start(tmp_path, capsys):
    rec = camera_recording(tmp_path / "desk")
    assert stream_main(["--replay", str(rec), "--max-frames", "2"]) == 0
    err = capsys.readouterr().err
    assert err.count(SYNTHETIC) == 1
    warning = next(line for line in err.splitlines() if SYNTHETIC in line)
    assert warning.startswith("reid-stream: warning: the embedded default bundle")
    assert "docs/training.md" in warning and "--bundle DIR" in warning


def test_no_synthetic_warning_on_the_simulator_or_with_another_bundle(sim_recording, tmp_path, capsys):
    assert stream_main(["--camera", "sim", "--max-frames", "2", "source.realtime=false"]) == 0
    assert stream_main(["--replay", str(sim_recording), "--max-frames", "2"]) == 0
    assert SYNTHETIC not in capsys.readouterr().err
    mine = tmp_path / "mine"
    shutil.copytree(DEFAULT_BUNDLE, mine)  # a bundle the user passes: trusted to be theirs
    webcam = load_config(StreamConfig, None, ["source.camera=webcam"])
    assert SYNTHETIC in synthetic_bundle_warning(webcam, load_bundle(DEFAULT_BUNDLE))
    assert synthetic_bundle_warning(webcam, load_bundle(mine)) is None


def test_replay_skips_missing_and_corrupt_frames_and_says_so(sim_recording, tmp_path, capsys):
    rec, out = tmp_path / "rec", tmp_path / "out"
    shutil.copytree(sim_recording, rec)
    (rec / "rgb" / "000002.png").unlink()
    png = rec / "depth" / "000004.png"
    png.write_bytes(png.read_bytes()[:200])  # cut off: not a whole PNG
    assert stream_main(["--replay", str(rec), "--output", str(out)]) == EXIT_SKIPPED == 3
    err = capsys.readouterr().err
    assert f"{rec}: frame 2: rgb file rgb/000002.png is missing or empty; frame skipped" in err
    assert f"{rec}: frame 4: depth file depth/000004.png is truncated or undecodable; frame skipped" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_processed"] == 4 and summary["frames_skipped"] == 2
    assert [(s["frame"], s["file"]) for s in summary["skipped"]] == [(2, "rgb/000002.png"), (4, "depth/000004.png")]
    logged = [json.loads(line)["frame"] for line in (out / "frames.jsonl").read_text().splitlines()]
    assert logged == [0, 1, 3, 5]  # the replay went on to the end
    assert "3 the run completed but skipped frames" in " ".join(stream_parser().format_help().split())


def _bundle_copy(tmp_path: Path, name: str, retrained: str | None = None):
    """The embedded bundle at another path (its network files linked); ``retrained``: that model's checkpoint
    checksum changed, as a bundle exported from another training run of the same model id records it."""
    root = tmp_path / name
    root.mkdir()
    for f in DEFAULT_BUNDLE.iterdir():
        if f.name != "manifest.json":
            (root / f.name).symlink_to(f.resolve())
    manifest = json.loads((DEFAULT_BUNDLE / "manifest.json").read_text())
    for m in manifest["models"]:
        if m["id"] == retrained:
            m["checkpoint_sha256"] = "0" * 64
    (root / "manifest.json").write_text(json.dumps(manifest))
    return load_bundle(root)


def _enrolled(gallery):
    from reidstream.pipeline.types import Embeddings, Modality

    v = np.zeros((1, 32), np.float32)
    v[0, 0] = 1.0
    gallery.enrol("alice", [Embeddings(v, Modality.RGB, "rgbd", np.zeros(1, np.int64))], 0.0)
    return gallery


def test_resume_refuses_a_gallery_of_another_bundle_and_applies_this_runs_settings(tmp_path, capsys):
    from reidstream.pipeline.app.stream import build_gallery
    from reidstream.pipeline.gallery import load_gallery, save_gallery
    from reidstream.pipeline.gallery.persist import bundle_identity

    out = tmp_path / "out"
    a, b = _bundle_copy(tmp_path, "bundle-a"), _bundle_copy(tmp_path, "bundle-b", retrained="distill")
    first = config_from_mapping(StreamConfig, {"output": {"dir": str(out)},
                                               "gallery": {"threshold": 2.0, "max_identities": 50}})
    g = _enrolled(build_gallery(first, out, None, a))
    assert g.bundle == bundle_identity(a) and g.bundle["models"]["distill"] == a.model("distill").checkpoint_sha256
    save_gallery(g, out / "gallery.npz")  # as the run saves it
    assert load_gallery(out / "gallery.npz").bundle == bundle_identity(a)

    resume = config_from_mapping(StreamConfig, {"output": {"dir": str(out), "existing": "resume"},
                                                "gallery": {"threshold": 5.0, "max_identities": 10}})
    with pytest.raises(ValueError, match="gallery.npz: this gallery was made with bundle .*bundle-a.* but this run "
                                         "uses bundle .*bundle-b") as e:
        build_gallery(resume, out, None, b)
    assert "distill 000000000000" in str(e.value) and "--overwrite" in str(e.value)

    capsys.readouterr()
    h = build_gallery(resume, out, None, _bundle_copy(tmp_path, "bundle-a-moved"))  # same models elsewhere
    err = capsys.readouterr().err
    assert h.identities() == ["alice"] and h.threshold == 5.0 and h.config.max_identities == 10
    assert "gallery.threshold 2.0 -> 5.0" in err and "gallery.max_identities 50 -> 10" in err
    save_gallery(h, out / "gallery.npz")
    again = load_gallery(out / "gallery.npz")
    assert again.config.threshold == 5.0 and again.bundle["path"].endswith("bundle-a-moved")


def test_resume_of_a_gallery_without_a_bundle_record_warns(tmp_path, capsys):
    from reidstream.pipeline.app.stream import build_gallery
    from reidstream.pipeline.gallery import Gallery, save_gallery
    from reidstream.pipeline.gallery.persist import bundle_identity

    out = tmp_path / "out"
    out.mkdir()
    save_gallery(_enrolled(Gallery()), out / "gallery.npz")  # bundle None: as older versions saved it
    a = _bundle_copy(tmp_path, "bundle-a")
    cfg = config_from_mapping(StreamConfig, {"output": {"dir": str(out), "existing": "resume"}})
    capsys.readouterr()
    g = build_gallery(cfg, out, None, a)
    assert g.identities() == ["alice"] and g.bundle == bundle_identity(a)
    assert "does not record the bundle that made it" in capsys.readouterr().err
