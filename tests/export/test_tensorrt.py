"""TensorRT engine building: argument checks (run anywhere) and engine parity vs ONNX Runtime (GPU + TensorRT)."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from reidstream.export import tensorrt_build
from reidstream.export.tensorrt_build import build_engine
from reidstream.pipeline.bundle import BatchRange, BundleError, EmbedderFile, EngineInfo
from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.preprocess import Preprocess

C, H, W, D = 3, 32, 16, 32
BATCH = BatchRange(min=1, opt=4, max=8)


def entry_for(path: Path, runtime: str, precision: str = "fp32", engine: EngineInfo | None = None,
              batch: BatchRange = BATCH, output: str = "embeddings") -> EmbedderFile:
    return config_from_mapping(EmbedderFile, {
        "path": path.name, "sha256": "0" * 64, "bytes": path.stat().st_size, "runtime": runtime,
        "precision": precision, "engine": engine.to_dict() if engine else None, "role": "embedder", "model": "m1",
        "modality": "rgb", "space": "s1",
        "input": {"channels": C, "height": H, "width": W, "colour_order": "RGB", "batch": batch.to_dict()},
        "preprocess": Preprocess("rgb", H, W).to_dict(), "output": {"name": output, "dim": D}}, "<test>")


def test_int8_without_calibration_fails_before_tensorrt(tmp_path):
    with pytest.raises(ValueError, match="calibration"):
        build_engine(tmp_path / "missing.onnx", tmp_path / "x.plan", input_name="images", input_shape=(C, H, W),
                     batch=BATCH, precision="int8")


def test_int8_calibration_of_the_wrong_shape_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"N x 3 x 32 x 16"):
        build_engine(tmp_path / "m.onnx", tmp_path / "x.plan", input_name="images", input_shape=(C, H, W),
                     batch=BATCH, precision="int8", calibration=np.zeros((4, 3, 16, 16), np.float32))
    with pytest.raises(ValueError, match="N >= 1"):
        build_engine(tmp_path / "m.onnx", tmp_path / "x.plan", input_name="images", input_shape=(C, H, W),
                     batch=BATCH, precision="int8", calibration=np.zeros((0, C, H, W), np.float32))


def test_unknown_precision_is_refused(tmp_path):
    with pytest.raises(ValueError, match="precision"):
        build_engine(tmp_path / "m.onnx", tmp_path / "x.plan", input_name="images", input_shape=(C, H, W),
                     batch=BATCH, precision="bf16")


def test_missing_onnx_file_is_named(tmp_path):
    with pytest.raises(BundleError, match="missing.onnx"):
        build_engine(tmp_path / "missing.onnx", tmp_path / "x.plan", input_name="images", input_shape=(C, H, W),
                     batch=BATCH, precision="fp32")
    assert not (tmp_path / "x.plan").exists()


def test_tensorrt_available_is_false_without_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert tensorrt_build.tensorrt_available() is False


def test_importing_the_builder_imports_neither_tensorrt_nor_torch():
    code = ("import sys, reidstream.export.tensorrt_build, reidstream.export.triton\n"
            "bad = [m for m in ('tensorrt', 'torch') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- GPU + TensorRT -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpu_trt():
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (pip install 'reid-stream[gpu]')")
    torch = pytest.importorskip("torch", reason="torch is not installed")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible to torch; TensorRT engines need one")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    """A small conv net ending in F.normalize, exported with a dynamic batch axis."""
    torch = pytest.importorskip("torch")
    nn, F = torch.nn, torch.nn.functional

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(C, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU())
            self.head = nn.Linear(32, D)

        def forward(self, x):
            return F.normalize(self.head(self.body(x).mean(dim=(2, 3))), dim=1)

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Tiny().eval(), torch.randn(2, C, H, W), str(path), input_names=["images"],
                          output_names=["embeddings"], opset_version=17, dynamo=False,
                          dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}})
    return path


def crops(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, C, H, W)).astype(np.float32)


def onnx_reference(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session.run(["embeddings"], {"images": x})[0]


def build_and_open(onnx_path: Path, out: Path, precision: str, batch: BatchRange = BATCH, **kwargs):
    from reidstream.pipeline.embed.tensorrt_backend import TensorRTBackend

    messages: list[str] = []
    info = build_engine(onnx_path, out, input_name="images", input_shape=(C, H, W), batch=batch,
                        precision=precision, workspace_gib=1.0, progress=messages.append, **kwargs)
    assert out.is_file() and messages
    assert not list(out.parent.glob("*.tmp"))
    entry = entry_for(out, "tensorrt", precision, info, batch)
    return TensorRTBackend(out, entry, device="cuda"), info


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.tensorrt
@pytest.mark.gpu
@pytest.mark.parametrize("precision, min_cosine", [("fp32", 0.9999), ("fp16", 0.999)])
def test_engine_matches_onnxruntime(gpu_trt, tiny_onnx, tmp_path, precision, min_cosine):
    from reidstream.pipeline.embed.tensorrt_backend import current_engine_info

    backend, info = build_and_open(tiny_onnx, tmp_path / f"tiny-{precision}.plan", precision)
    assert info == current_engine_info(0)
    x = crops(8)
    got, want = backend(x), onnx_reference(tiny_onnx, x)
    assert got.dtype == np.float32 and got.shape == (8, D)
    assert cosines(got, want).min() >= min_cosine
    # batches of every size the profile allows, one below it (padded) and above it (chunked) give the same rows
    assert np.allclose(backend(x[:1]), got[:1], atol=5e-3)
    assert np.allclose(backend(np.concatenate([x, x])), np.concatenate([got, got]), atol=5e-3)
    assert backend(x[:0]).shape == (0, D)


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_batch_below_profile_minimum_is_padded(gpu_trt, tiny_onnx, tmp_path):
    backend, _ = build_and_open(tiny_onnx, tmp_path / "tiny-min2.plan", "fp32", BatchRange(min=2, opt=4, max=8))
    x = crops(3, seed=2)
    one = backend(x[:1])
    assert one.shape == (1, D)
    assert cosines(one, onnx_reference(tiny_onnx, x[:1])).min() >= 0.9999


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_int8_engine_builds_and_writes_its_calibration_cache(gpu_trt, tiny_onnx, tmp_path):
    cache = tmp_path / "calib.cache"
    backend, _ = build_and_open(tiny_onnx, tmp_path / "tiny-int8.plan", "int8", calibration=crops(10, seed=3),
                                calibration_cache=cache)
    assert cache.is_file() and cache.stat().st_size > 0
    x = crops(8, seed=4)
    got = backend(x)
    assert np.isfinite(got).all() and got.shape == (8, D)
    assert cosines(got, onnx_reference(tiny_onnx, x)).mean() >= 0.9


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_engine_with_other_tensor_names_than_its_entry_is_refused(gpu_trt, tiny_onnx, tmp_path):
    from reidstream.pipeline.embed.tensorrt_backend import TensorRTBackend

    plan = tmp_path / "tiny.plan"
    info = build_engine(tiny_onnx, plan, input_name="images", input_shape=(C, H, W), batch=BATCH,
                        precision="fp32", workspace_gib=1.0)
    with pytest.raises(BundleError, match=re.escape(str(plan))):
        TensorRTBackend(plan, entry_for(plan, "tensorrt", "fp32", info, output="features"), device="cuda")


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_wrong_input_name_or_unparsable_onnx_is_a_value_error(gpu_trt, tiny_onnx, tmp_path):
    with pytest.raises(ValueError, match="expected one input 'pixels'"):
        build_engine(tiny_onnx, tmp_path / "a.plan", input_name="pixels", input_shape=(C, H, W), batch=BATCH,
                     precision="fp32")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an onnx model")
    with pytest.raises(ValueError, match="garbage.onnx"):
        build_engine(garbage, tmp_path / "b.plan", input_name="images", input_shape=(C, H, W), batch=BATCH,
                     precision="fp32")
    assert not (tmp_path / "a.plan").exists() and not (tmp_path / "b.plan").exists()
