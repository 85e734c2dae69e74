"""``reid-export`` end to end: bundle, verify (parity figures), benchmark, inspect, triton; errors exit 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from reidstream.pipeline.bundle import load_bundle


def run(*args, check=True):
    exe = shutil.which("reid-export")
    assert exe, "reid-export is not installed: pip install -e ."
    r = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_bundle_then_verify_prints_parity_figures(distill_ckpt, lupi_ckpt, tmp_path):
    out = tmp_path / "bundle"
    r = run("bundle", distill_ckpt, lupi_ckpt, "--out", out, "--verify")
    assert "model distill: method distill, space rgbd" in r.stdout and "lupi-ir.onnx" in r.stdout
    assert "verify: PASS" in r.stdout
    for row in ("distill      rgb      onnx/fp32", "lupi         ir       onnx/fp32", "depth -> rgb", "ir -> rgb"):
        assert row in r.stdout
    assert "lupi: PyTorch reference on" in r.stderr  # progress
    # verify on its own, with the figures as JSON; the training data recorded in the manifest is found.
    r = run("verify", out, "--json", tmp_path / "v.json", "--limit", "40")
    figures = json.loads((tmp_path / "v.json").read_text())
    assert figures["ok"] and len(figures["files"]) == 4 and len(figures["rankings"]) == 4
    assert min(f["cos_min"] for f in figures["files"]) >= 0.9999
    # the threshold applies to the tolerance-aware figure (near-ties may reorder); both are reported
    assert all(r["identical_tol"] == 1.0 and 0 <= r["identical"] <= 1 and r["k"] == 5 for r in figures["rankings"])
    assert "up to ties" in r.stdout
    # then the README's last step: the live pipeline on the simulated camera, from the verified bundle
    s = subprocess.run([sys.executable, "-c", "import sys; from reidstream.pipeline.app.cli import stream_main; "
                        "sys.exit(stream_main())", "--bundle", str(out), "--camera", "sim",
                        "--max-frames", "10", "--output", str(tmp_path / "stream")],
                       capture_output=True, text=True, timeout=120)
    assert s.returncode == 0, f"reid-stream --bundle {out}: expected exit 0, got {s.returncode}\n{s.stderr[-2000:]}"
    assert any((tmp_path / "stream").iterdir()), "reid-stream wrote nothing under --output"


def test_verify_fails_past_the_threshold(bundle_dir, tmp_path):
    r = run("verify", bundle_dir, "--min-cosine", "1.5", "--limit", "10", check=False)
    assert r.returncode == 1 and "FAIL" in r.stdout and "verify: FAIL" in r.stdout


def test_verify_needs_evaluation_data_when_the_training_data_is_gone(bundle_dir, tmp_path, rgbd_data):
    r = run("verify", bundle_dir, "--data", tmp_path / "nowhere", "--layout", "robotpku", check=False)
    assert r.returncode == 2 and "nowhere" in r.stderr and "--data" in r.stderr


def test_benchmark_compares_runtimes_in_one_run(bundle_dir):
    r = run("benchmark", bundle_dir, "--model", "lupi", "--modality", "ir", "--batches", "1", "8", "32",
            "--seconds", "0.05")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("lupi/ir embedder, input 3x64x32")
    rows = [line.split() for line in lines[2:]]
    assert [(row[0], int(row[1])) for row in rows] == [(rt, b) for rt in ("torch/fp32", "onnx/fp32")
                                                       for b in (1, 8, 32)]
    assert all(float(row[3]) > 0 for row in rows)  # crops/s
    assert [row[4] for row in rows[:3]] == ["1.00x"] * 3


def test_benchmark_per_crop_times_every_onnx_network(bundle_dir):
    r = run("benchmark", bundle_dir, "--per-crop", "--batches", "8", "--threads", "1", "--seconds", "0.05",
            "--budget-ms", "1000")
    lines = r.stdout.splitlines()
    assert "ONNX Runtime on the CPU" in lines[0] and lines[1].split()[:2] == ["network", "input"]
    rows = {row[0]: row for row in (line.split() for line in lines[2:])}
    assert set(rows) == {"distill-depth", "distill-rgb", "lupi-rgb", "lupi-ir"}
    for row in rows.values():
        assert row[1:4] == ["3x64x32", "8", "1"] and float(row[4]) > 0 and row[6] == "ok"
    r = run("benchmark", bundle_dir, "--per-crop", "--batches", "8", "--seconds", "0.05", "--budget-ms", "1e-9")
    assert all(line.split()[-1] == "over" for line in r.stdout.splitlines()[2:])


def test_inspect_and_triton(bundle_dir, tmp_path):
    r = run("inspect", bundle_dir)
    assert "checksums: ok" in r.stdout and "distill-depth.onnx" in r.stdout
    r = run("triton", bundle_dir, "--out", tmp_path / "repo")
    assert len(r.stdout.split()) == 4
    assert (tmp_path / "repo" / "lupi-ir" / "config.pbtxt").is_file()


@pytest.mark.parametrize("args,message", [
    (["bundle", "missing.pt", "--out", "{tmp}/b"], "missing.pt"),
    (["bundle", "{ckpt}", "--out", "{tmp}/b", "--runtimes", "onnx,tflite"], "runtimes"),
    (["verify", "{tmp}"], "manifest.json: missing"),
    (["bundle", "{ckpt}", "--out", "{tmp}/b", "--batch", "8,1,32"], "min <= opt <= max"),
])
def test_bad_input_exits_2_with_a_clear_message(distill_ckpt, tmp_path, args, message):
    args = [a.format(tmp=tmp_path, ckpt=distill_ckpt) for a in args]
    r = run(*args, check=False)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (tmp_path / "b").exists()


def test_tensorrt_without_tensorrt_is_refused_before_writing(distill_ckpt, tmp_path):
    from reidstream.export.tensorrt_build import tensorrt_available

    if tensorrt_available():
        pytest.skip("TensorRT and a GPU are present: engines build here")
    r = run("bundle", distill_ckpt, "--out", tmp_path / "b", "--runtimes", "onnx,tensorrt", check=False)
    assert r.returncode == 2 and "TensorRT and a CUDA GPU are needed" in r.stderr
    assert not (tmp_path / "b").exists()


def test_bundle_loads_after_cli_export(distill_ckpt, tmp_path):
    run("bundle", distill_ckpt, "--out", tmp_path / "b", "--runtimes", "onnx", "--batch", "1,4,16", "--simplify")
    b = load_bundle(tmp_path / "b")
    assert [e.runtime for e in b.embedders()] == ["onnx", "onnx"]
    assert b.embedders()[0].input.batch.max == 16
