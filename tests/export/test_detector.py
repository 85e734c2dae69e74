"""The person detector through ultralytics' own exporter: a YOLO .pt -> ONNX in the bundle, runnable by ultralytics."""

from __future__ import annotations

import numpy as np
import pytest

from reidstream.export.bundle import export_bundle
from reidstream.pipeline.bundle import load_bundle

ultralytics = pytest.importorskip("ultralytics", reason="detector export needs ultralytics: pip install "
                                                        "'reid-stream[detect]'")


@pytest.fixture(scope="module")
def yolo_pt(tmp_path_factory):
    """An untrained YOLOv8n built from its architecture file (no download), saved as a .pt."""
    path = tmp_path_factory.mktemp("yolo") / "yolo-tiny.pt"
    model = ultralytics.YOLO("yolov8n.yaml")
    model.model.names = {0: "person", **{i: f"class{i}" for i in range(1, 80)}}  # COCO's order: person first
    model.save(str(path))
    return path


def test_detector_exports_to_onnx_with_its_classes(yolo_pt, distill_ckpt, tmp_path):
    before = sorted(p.name for p in yolo_pt.parent.iterdir())
    b = export_bundle([distill_ckpt], tmp_path / "b", runtimes=("onnx",), detector=yolo_pt,
                      detector_modalities=("rgb", "ir"), detector_imgsz=160, progress=None)
    assert sorted(p.name for p in yolo_pt.parent.iterdir()) == before  # the user's folder is left as it was
    (det,) = b.detectors()
    assert det.runtime == "onnx" and det.modalities == ["rgb", "ir"] and det.imgsz == [160, 160]
    assert det.classes["0"] == "person" and det.person_class == 0 and det.source == "yolo-tiny.pt"
    assert load_bundle(tmp_path / "b").detectors("onnx") == [det]
    # ultralytics runs the exported file (ONNX Runtime underneath) on a frame.
    model = ultralytics.YOLO(str(b.path(det)), task="detect")
    res = model.predict(np.zeros((240, 320, 3), np.uint8), imgsz=160, verbose=False)
    assert len(res) == 1 and res[0].boxes is not None


def test_detector_without_person_class_is_refused(tmp_path):
    from reidstream.export.detector import export_detector

    with pytest.raises(FileNotFoundError, match="nope.pt: detector weights not found"):
        export_detector(tmp_path / "nope.pt", tmp_path)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"bad\.pt: not an ultralytics YOLO detector"):
        export_detector(bad, tmp_path / "out")


@pytest.fixture(scope="module")
def fall_pt(tmp_path_factory):
    """An untrained two-class YOLOv8n (built from its yaml with nc 2) whose classes are ``{0: Normal, 1: Fall}``."""
    import yaml

    tmp = tmp_path_factory.mktemp("fall")
    arch = {k: v for k, v in ultralytics.YOLO("yolov8n.yaml").model.yaml.items() if k != "yaml_file"}
    (tmp / "yolov8n-fall.yaml").write_text(yaml.safe_dump({**arch, "nc": 2}))
    model = ultralytics.YOLO(str(tmp / "yolov8n-fall.yaml"))
    model.model.names = {0: "Normal", 1: "Fall"}
    model.save(str(tmp / "fall.pt"))
    return tmp / "fall.pt"


def test_cli_detector_classes_choose_and_are_recorded(fall_pt, tmp_path):
    import shutil
    import subprocess

    exe = shutil.which("reid-export")
    assert exe, "reid-export is not installed: pip install -e ."
    base = [exe, "bundle", "--detector", str(fall_pt), "--detector-runtimes", "torch"]
    r = subprocess.run([*base, "--out", str(tmp_path / "refused")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and not (tmp_path / "refused").exists()
    assert "no 'person' class (its classes: 0: Normal, 1: Fall)" in r.stderr and "--detector-classes" in r.stderr
    r = subprocess.run([*base, "--out", str(tmp_path / "b"), "--detector-classes", "Normal,Fall"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (det,) = load_bundle(tmp_path / "b").detectors()
    assert det.detect_classes == [0, 1] and det.classes == {"0": "Normal", "1": "Fall"}
    assert "classes Normal, Fall" in r.stdout
