"""Triton model repository from a small bundle built here (ONNX + a stand-in TensorRT plan + a torch file)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest

from reidstream.export.triton import MANIFEST_COPY, write_triton_repository
from reidstream.pipeline.bundle import MANIFEST, ONNX_METADATA_KEY, EmbedderFile, load_bundle, sha256_of
from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.embed.onnx_backend import OnnxRuntimeBackend
from reidstream.pipeline.preprocess import Preprocess

C, H, W, D = 3, 32, 16, 24
ENGINE = {"tensorrt": "10.3.0", "gpu": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0"}


def entry_dict(path: Path, runtime: str, precision: str = "fp32") -> dict:
    return {"path": path.name, "sha256": sha256_of(path) if path.exists() else "0" * 64,
            "bytes": path.stat().st_size if path.exists() else 0, "runtime": runtime, "precision": precision,
            "engine": ENGINE if runtime == "tensorrt" else None, "role": "embedder", "model": "m1",
            "modality": "rgb", "space": "s1",
            "input": {"channels": C, "height": H, "width": W, "colour_order": "RGB",
                      "batch": {"min": 1, "opt": 4, "max": 16}},
            "preprocess": Preprocess("rgb", H, W).to_dict(), "output": {"dim": D}}


def export_onnx(path: Path) -> EmbedderFile:
    """Exports a tiny network to ``path`` with the entry's metadata in ``metadata_props``; returns the entry."""
    torch = pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    net = torch.nn.Sequential(torch.nn.Conv2d(C, 8, 3, 2, 1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, D)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.randn(2, C, H, W), str(path), input_names=["images"],
                          output_names=["embeddings"], opset_version=17, dynamo=False,
                          dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}})
    meta = config_from_mapping(EmbedderFile, entry_dict(path, "onnx"), "<test>").metadata()
    model = onnx.load(str(path))
    prop = model.metadata_props.add()
    prop.key, prop.value = ONNX_METADATA_KEY, json.dumps(meta)
    onnx.save(model, str(path))
    return config_from_mapping(EmbedderFile, entry_dict(path, "onnx"), "<test>")


def write_bundle(root: Path, runtimes: tuple[str, ...] = ("onnx", "tensorrt", "torch")) -> Path:
    root.mkdir()
    files = []
    if "onnx" in runtimes:
        files.append(export_onnx(root / "m1-rgb.onnx").to_dict())
    if "tensorrt" in runtimes:
        (root / "m1-rgb-fp16.plan").write_bytes(b"stand-in engine bytes")
        files.append(entry_dict(root / "m1-rgb-fp16.plan", "tensorrt", "fp16"))
    if "torch" in runtimes:
        (root / "m1-rgb.pt").write_bytes(b"stand-in torch file")
        files.append(entry_dict(root / "m1-rgb.pt", "torch"))
    manifest = {"format": "reid-stream-bundle-v1", "created": "2024-01-01T00:00:00Z", "versions": {},
                "models": [{"id": "m1", "method": "softmax", "space": "s1", "checkpoint": "m1.pt",
                            "checkpoint_sha256": "1" * 64, "config": {}}],
                "files": files}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return root


def pbtxt_string(text: str, key: str) -> str:
    """The value of the first ``key: "..."`` string field, unescaped as protobuf text format does."""
    from google.protobuf import text_format

    m = re.search(rf"^\s*{key}: (\".*\")$", text, re.M)
    assert m, f"no {key} in config.pbtxt"
    return text_format.Tokenizer([m.group(1)]).ConsumeString()


def test_repository_layout_and_configs(tmp_path):
    bundle = load_bundle(write_bundle(tmp_path / "bundle"))
    out = tmp_path / "triton"
    dirs = write_triton_repository(bundle, out, instance_count=2)
    assert dirs == [out / "m1-rgb", out / "m1-rgb-fp16-trt"]
    assert sorted(p.name for p in out.iterdir()) == ["m1-rgb", "m1-rgb-fp16-trt", MANIFEST_COPY]
    assert (out / "m1-rgb" / "1" / "model.onnx").read_bytes() == (bundle.root / "m1-rgb.onnx").read_bytes()
    assert (out / "m1-rgb-fp16-trt" / "1" / "model.plan").read_bytes() == b"stand-in engine bytes"
    assert (out / MANIFEST_COPY).read_bytes() == (bundle.root / MANIFEST).read_bytes()

    by_runtime = {e.runtime: e for e in bundle.embedders()}
    OnnxRuntimeBackend(bundle.path(by_runtime["onnx"]), by_runtime["onnx"])  # a realistic file: metadata matches
    for name, runtime, platform, kind in [("m1-rgb", "onnx", "onnxruntime_onnx", "KIND_AUTO"),
                                          ("m1-rgb-fp16-trt", "tensorrt", "tensorrt_plan", "KIND_GPU")]:
        text = (out / name / "config.pbtxt").read_text(encoding="utf-8")
        assert pbtxt_string(text, "name") == name
        assert pbtxt_string(text, "platform") == platform
        assert re.search(r"^max_batch_size: 16$", text, re.M)
        assert f"dims: [ {C}, {H}, {W} ]" in text and f"dims: [ {D} ]" in text
        assert text.count("data_type: TYPE_FP32") == 2
        assert "preferred_batch_size: [ 4 ]" in text
        assert f"kind: {kind}" in text and "count: 2" in text
        assert pbtxt_string(text, "key") == ONNX_METADATA_KEY
        meta = json.loads(pbtxt_string(text, "string_value"))
        assert meta == by_runtime[runtime].metadata()
        assert text.count("{") == text.count("}") and text.count("[") == text.count("]")
    assert "NVIDIA A100-SXM4-80GB" in (out / "m1-rgb-fp16-trt" / "config.pbtxt").read_text()


def test_non_empty_output_needs_force(tmp_path):
    bundle = load_bundle(write_bundle(tmp_path / "bundle", ("onnx",)))
    out = tmp_path / "triton"
    out.mkdir()
    (out / "other-model").mkdir()
    with pytest.raises(FileExistsError, match=re.escape(str(out))):
        write_triton_repository(bundle, out)
    assert sorted(p.name for p in out.iterdir()) == ["other-model"]
    (out / "m1-rgb").mkdir()
    (out / "m1-rgb" / "stale.txt").write_text("old")
    write_triton_repository(bundle, out, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["m1-rgb", "other-model", MANIFEST_COPY]
    assert sorted(p.name for p in (out / "m1-rgb").iterdir()) == ["1", "config.pbtxt"]


def test_output_that_is_a_file_is_refused(tmp_path):
    bundle = load_bundle(write_bundle(tmp_path / "bundle", ("onnx",)))
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a directory"):
        write_triton_repository(bundle, tmp_path / "file", force=True)


def test_bundle_without_onnx_or_tensorrt_is_refused(tmp_path):
    bundle = load_bundle(write_bundle(tmp_path / "bundle", ("torch",)))
    with pytest.raises(ValueError, match="no ONNX or TensorRT embedder"):
        write_triton_repository(bundle, tmp_path / "triton")
    assert not (tmp_path / "triton").exists()
