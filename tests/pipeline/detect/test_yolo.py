"""The YOLO person detector: an untrained YOLOv8n exported to ONNX in a bundle (contract only, not accuracy)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from reidstream.pipeline.bundle import MANIFEST, DetectorFile, load_bundle, sha256_of
from reidstream.pipeline.detect import Detector, YoloDetector
from reidstream.pipeline.detect.yolo import to_three_channels
from reidstream.pipeline.types import Alignment, Detections, Frame, Intrinsics, Modality

ultralytics = pytest.importorskip("ultralytics", reason="the YOLO detector needs ultralytics: pip install "
                                                        "'reid-stream[detect]'")
pytest.importorskip("onnxruntime", reason="running the ONNX detector needs onnxruntime")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A bundle holding only an untrained YOLOv8n (built from its yaml, no download) exported to ONNX at 160."""
    from reidstream.export.detector import export_detector

    tmp = tmp_path_factory.mktemp("yolo")
    model = ultralytics.YOLO("yolov8n.yaml")
    model.model.names = {0: "person", **{i: f"class{i}" for i in range(1, 80)}}  # COCO's order: person first
    model.save(str(tmp / "yolo-tiny.pt"))
    root = tmp / "bundle"
    path, fields = export_detector(tmp / "yolo-tiny.pt", root, imgsz=160, modalities=("rgb", "ir"))
    entry = dict(fields, path=path.name, sha256=sha256_of(path), bytes=path.stat().st_size)
    (root / MANIFEST).write_text(json.dumps({"format": "reid-stream-bundle-v1", "created": "now", "versions": {},
                                             "files": [entry]}))
    return load_bundle(root)


def _frame(**kw) -> Frame:
    rng = np.random.default_rng(0)
    return Frame(rgb=rng.integers(0, 256, (240, 320, 3), dtype=np.uint8),
                 ir=rng.integers(0, 256, (240, 320), dtype=np.uint8), index=5, **kw)


def _check(dets: Detections, modality: Modality, width: int = 320, height: int = 240) -> None:
    assert isinstance(dets, Detections) and dets.modality is modality and dets.frame_index == 5
    assert dets.boxes.dtype == np.float32 and dets.boxes.shape == (len(dets), 4) and (dets.track_ids == -1).all()
    assert (dets.boxes >= 0).all() and (dets.boxes[:, 2] <= width).all() and (dets.boxes[:, 3] <= height).all()
    assert ((dets.scores >= 0) & (dets.scores <= 1)).all()


def test_bundle_detector_runs_on_colour_and_ir(bundle):
    (entry,) = bundle.detectors("onnx")
    assert isinstance(entry, DetectorFile) and entry.imgsz == [160, 160]
    rgb = YoloDetector.from_bundle(bundle, entry, conf=0.0)
    assert isinstance(rgb, Detector) and rgb.name == "yolo-rgb" and rgb.imgsz == (160, 160) and rgb.classes == [0]
    dets = rgb.detect(_frame())
    assert len(dets) > 0  # untrained: low scores everywhere, conf=0 keeps them
    _check(dets, Modality.RGB)
    assert len(YoloDetector.from_bundle(bundle, entry, conf=0.99).detect(_frame())) == 0
    ir = YoloDetector.from_bundle(bundle, entry, modality="ir", conf=0.0)
    _check(ir.detect(_frame()), Modality.IR)
    with pytest.raises(ValueError, match="no thermal image|not for 'thermal'"):
        YoloDetector.from_bundle(bundle, entry, modality="thermal")
    with pytest.raises(ValueError, match="has no ir image"):
        ir.detect(Frame(rgb=np.zeros((240, 320, 3), np.uint8)))


class _Array:
    def __init__(self, a) -> None:
        self.a = np.asarray(a)

    def cpu(self):
        return self

    def numpy(self):
        return self.a


class _Boxes:
    def __init__(self, xyxy, conf, cls) -> None:
        self.xyxy, self.conf, self.cls = _Array(xyxy), _Array(conf), _Array(cls)

    def __len__(self) -> int:
        return len(self.conf.a)


class _Result:
    def __init__(self, boxes, names) -> None:
        self.boxes, self.names = boxes, names


def test_only_people_kept_and_boxes_mapped_to_the_reference_grid(bundle, monkeypatch):
    (entry,) = bundle.detectors("onnx")
    det = YoloDetector.from_bundle(bundle, entry, modality="ir")
    seen = {}

    def predict(image, **kw):
        seen.update(kw, image=image)
        return [_Result(_Boxes([[10, 20, 40, 100], [0, 0, 5, 5], [150, 60, 170, 130]], [0.9, 0.8, 0.5], [0, 3, 0]),
                        {0: "person", 3: "class3"})]

    monkeypatch.setattr(det.model, "predict", predict)
    # IR at half the colour resolution, unaligned, with its own intrinsics.
    frame = Frame(rgb=np.zeros((240, 320, 3), np.uint8), ir=np.full((120, 160), 1000, np.uint16), index=5,
                  intrinsics=Intrinsics(320, 240, 300.0, 300.0, 159.5, 119.5), alignment=Alignment.UNALIGNED,
                  stream_intrinsics={Modality.IR: Intrinsics(160, 120, 150.0, 150.0, 79.5, 59.5)})
    dets = det.detect(frame)
    assert seen["image"].shape == (120, 160, 3) and seen["image"].dtype == np.uint8 and seen["classes"] == [0]
    assert seen["imgsz"] == (160, 160) and seen["conf"] == pytest.approx(0.35)
    np.testing.assert_allclose(dets.boxes, [[20, 40, 80, 200], [300, 120, 320, 240]], atol=1.0)  # clipped to IR
    np.testing.assert_allclose(dets.scores, [0.9, 0.5])

    wrong = YoloDetector.from_bundle(bundle, entry)
    wrong.names[0] = "Fall"  # the manifest says otherwise than the model
    monkeypatch.setattr(wrong.model, "predict", predict)
    with pytest.raises(ValueError, match="class 0 of the model is 'person', not 'Fall'"):
        wrong.detect(frame)


def test_single_channel_images_become_three_channels():
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200
    assert (to_three_channels(rgb, "rgb")[..., 2] == 200).all()  # BGR for ultralytics
    ir16 = np.arange(20, dtype=np.uint16).reshape(4, 5) * 100
    out = to_three_channels(ir16, Modality.IR)
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8 and out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
    assert (out[..., 0] == out[..., 2]).all()
    thermal = np.full((4, 5), 30.0, np.float32)
    assert to_three_channels(thermal, "thermal").shape == (4, 5, 3)
    ir8 = np.full((4, 5), 77, np.uint8)
    assert (to_three_channels(ir8, "ir") == 77).all()


def test_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        YoloDetector(tmp_path / "none.onnx")
    with pytest.raises(ValueError, match="rgb, ir, thermal"):
        YoloDetector(tmp_path / "none.onnx", modality="depth")


@pytest.fixture(scope="module")
def fall_pt(tmp_path_factory):
    """An untrained two-class YOLOv8n whose classes are ``{0: Normal, 1: Fall}`` (no ``person``), saved as a .pt."""
    tmp = tmp_path_factory.mktemp("fall")
    arch = {k: v for k, v in ultralytics.YOLO("yolov8n.yaml").model.yaml.items() if k != "yaml_file"}
    (tmp / "yolov8n-fall.yaml").write_text(yaml.safe_dump({**arch, "nc": 2}))
    model = ultralytics.YOLO(str(tmp / "yolov8n-fall.yaml"))  # two output classes
    model.model.names = {0: "Normal", 1: "Fall"}
    model.save(str(tmp / "fall.pt"))
    assert ultralytics.YOLO(str(tmp / "fall.pt")).names == {0: "Normal", 1: "Fall"}
    return tmp / "fall.pt"


def test_a_model_without_person_needs_classes(fall_pt):
    with pytest.raises(ValueError, match=r"fall\.pt: the detector has no 'person' class \(its classes: 0: Normal, "
                                         r"1: Fall\); choose .* with detector\.classes"):
        YoloDetector(fall_pt)
    with pytest.raises(ValueError, match=r"detector\.classes: the detector has no class 'Sitting'; expected ids or "
                                         r"names among its classes \(0: Normal, 1: Fall\)"):
        YoloDetector(fall_pt, classes=["Fall", "Sitting"])
    with pytest.raises(ValueError, match="no class 7"):
        YoloDetector(fall_pt, classes=[7])


@pytest.mark.parametrize("classes", [["Normal", "Fall"], [0, 1], ["1", "Normal"]])
def test_chosen_classes_are_what_ultralytics_is_asked_for_and_kept(fall_pt, classes, monkeypatch):
    det = YoloDetector(fall_pt, classes=classes, imgsz=160, conf=0.0)
    assert sorted(det.classes) == [0, 1]
    seen = {}
    real = det.model.predict

    def predict(image, **kw):
        seen.update(kw)
        return real(image, **kw)

    monkeypatch.setattr(det.model, "predict", predict)
    dets = det.detect(_frame())  # the real untrained model: whatever it finds, of these classes
    _check(dets, Modality.RGB)
    assert sorted(seen["classes"]) == [0, 1]
    only_fall = YoloDetector(fall_pt, classes=["Fall"], imgsz=160)
    monkeypatch.setattr(only_fall.model, "predict", lambda image, **kw: [_Result(
        _Boxes([[10, 20, 40, 100], [50, 20, 90, 100]], [0.9, 0.8], [0, 1]), {0: "Normal", 1: "Fall"})])
    kept = only_fall.detect(_frame())
    np.testing.assert_allclose(kept.scores, [0.8])  # the Normal box is dropped


def test_stream_config_detector_classes_reach_the_yolo_detector(fall_pt):
    from reidstream.pipeline.app.stream import build_detector, bundle_of
    from reidstream.pipeline.config import load_config
    from reidstream.pipeline.app.config import StreamConfig

    bundle = bundle_of(StreamConfig())
    cfg = load_config(StreamConfig, None, ["detector.kind=yolo", f"detector.yolo={fall_pt}"])
    with pytest.raises(ValueError, match="no 'person' class .*0: Normal, 1: Fall"):
        build_detector(cfg, bundle)
    cfg = load_config(StreamConfig, None, ["detector.kind=yolo", f"detector.yolo={fall_pt}",
                                           "detector.classes=[Normal, Fall]"])
    assert cfg.detector.classes == ["Normal", "Fall"]
    det = build_detector(cfg, bundle)
    assert isinstance(det, YoloDetector) and det.classes == [0, 1]
    _check(det.detect(_frame()), Modality.RGB)


def test_bundle_detector_records_its_classes_for_every_runtime(fall_pt, tmp_path):
    from reidstream.export.detector import export_detector

    with pytest.raises(ValueError, match=r"no 'person' class \(its classes: 0: Normal, 1: Fall\).*--detector-classes"):
        export_detector(fall_pt, tmp_path / "refused", runtime="torch")
    with pytest.raises(ValueError, match=r"--detector-classes: the detector has no class 'Sitting'.*0: Normal"):
        export_detector(fall_pt, tmp_path / "refused", runtime="torch", classes=["Sitting"])
    root = tmp_path / "bundle"
    entries = []
    for rt in ("torch", "onnx"):
        path, fields = export_detector(fall_pt, root, runtime=rt, imgsz=160, classes=["Fall"])
        assert fields["detect_classes"] == [1] and fields["classes"] == {"0": "Normal", "1": "Fall"}
        entries.append(dict(fields, path=path.name, sha256=sha256_of(path), bytes=path.stat().st_size))
    (root / MANIFEST).write_text(json.dumps({"format": "reid-stream-bundle-v1", "created": "now", "versions": {},
                                             "files": entries}))
    b = load_bundle(root)
    for rt in ("torch", "onnx"):
        (entry,) = b.detectors(rt)
        assert entry.detect_classes == [1]
        det = YoloDetector.from_bundle(b, entry, conf=0.0)
        assert det.classes == [1]
        _check(det.detect(_frame()), Modality.RGB)
        assert YoloDetector.from_bundle(b, entry, classes=["Normal", "Fall"]).classes == [0, 1]
        with pytest.raises(ValueError, match="no class 'person'.*0: Normal, 1: Fall"):
            YoloDetector.from_bundle(b, entry, classes=["person"])
