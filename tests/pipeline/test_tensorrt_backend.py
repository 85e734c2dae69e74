"""TensorRT backend checks that need neither TensorRT nor a GPU: engine/machine matching and refusals.

Running real engines is covered by the GPU tests in tests/export/test_tensorrt.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from reidstream.pipeline.bundle import BundleError, EmbedderFile, EngineInfo
from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.embed import open_backend
from reidstream.pipeline.embed import tensorrt_backend as trt_backend
from reidstream.pipeline.preprocess import Preprocess

A100 = EngineInfo(tensorrt="10.3.0", gpu="NVIDIA A100-SXM4-80GB", compute_capability="8.0")
H100 = EngineInfo(tensorrt="10.3.0", gpu="NVIDIA H100 80GB HBM3", compute_capability="9.0")


def engine_entry(engine: EngineInfo = A100, path: str = "m1-rgb-fp16.plan") -> EmbedderFile:
    return config_from_mapping(EmbedderFile, {
        "path": path, "sha256": "0" * 64, "bytes": 4, "runtime": "tensorrt", "precision": "fp16",
        "engine": engine.to_dict(), "role": "embedder", "model": "m1", "modality": "rgb", "space": "s1",
        "input": {"channels": 3, "height": 32, "width": 16, "colour_order": "RGB",
                  "batch": {"min": 1, "opt": 4, "max": 8}},
        "preprocess": Preprocess("rgb", 32, 16).to_dict(), "output": {"dim": 32}}, "<test>")


def test_engine_mismatch_same_machine_is_none():
    assert trt_backend.engine_mismatch(A100, A100.model_copy()) is None


def test_engine_mismatch_other_gpu_names_both():
    msg = trt_backend.engine_mismatch(A100, H100)
    assert msg is not None
    assert "NVIDIA A100-SXM4-80GB (8.0)" in msg and "NVIDIA H100 80GB HBM3 (9.0)" in msg
    assert "rebuild" in msg and "reid-export" in msg


def test_engine_mismatch_other_tensorrt_version_names_both():
    other = A100.model_copy(update={"tensorrt": "10.7.0"})
    msg = trt_backend.engine_mismatch(A100, other)
    assert msg is not None and "TensorRT 10.3.0" in msg and "TensorRT 10.7.0" in msg


def test_engine_mismatch_same_name_other_capability():
    other = A100.model_copy(update={"compute_capability": "8.6"})
    assert trt_backend.engine_mismatch(A100, other) is not None


def test_backend_refuses_engine_built_for_another_gpu(tmp_path, monkeypatch):
    plan = tmp_path / "m1-rgb-fp16.plan"
    plan.write_bytes(b"fake")
    calls = []
    monkeypatch.setattr(trt_backend, "current_engine_info", lambda index=0: calls.append(index) or H100)
    with pytest.raises(BundleError) as err:
        trt_backend.TensorRTBackend(plan, engine_entry(A100), device="cuda:0")
    assert str(plan) in str(err.value)
    assert "NVIDIA A100-SXM4-80GB" in str(err.value) and "NVIDIA H100 80GB HBM3" in str(err.value)
    assert calls == [0]


def test_open_backend_routes_engines_to_the_check(tmp_path, monkeypatch):
    plan = tmp_path / "m1-rgb-fp16.plan"
    plan.write_bytes(b"fake")
    monkeypatch.setattr(trt_backend, "current_engine_info", lambda index=0: H100)
    with pytest.raises(BundleError, match="cannot run this TensorRT engine"):
        open_backend(plan, engine_entry(A100), device="cuda")


def test_backend_needs_a_manifest_entry(tmp_path):
    with pytest.raises(BundleError, match="open it through its bundle"):
        trt_backend.TensorRTBackend(tmp_path / "x.plan", None)


def test_backend_refuses_cpu_device(tmp_path):
    with pytest.raises(RuntimeError, match="CUDA GPU only"):
        trt_backend.TensorRTBackend(tmp_path / "x.plan", engine_entry(), device="cpu")


def test_current_engine_info_without_tensorrt_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    with pytest.raises(RuntimeError, match="tensorrt"):
        trt_backend.current_engine_info()


def test_importing_the_backends_imports_neither_tensorrt_nor_torch():
    code = ("import sys, reidstream.pipeline.embed, reidstream.pipeline.embed.tensorrt_backend\n"
            "bad = [m for m in ('tensorrt', 'torch') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)
