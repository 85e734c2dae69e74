"""``verify``: exact exports pass (near-ties included), broken exports fail with a clear reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from reidstream.export import verify as verify_mod
from reidstream.export.verify import CropSet, dataset_crops, topk_agreement, verify_bundle
from reidstream.pipeline.bundle import MANIFEST, load_bundle, sha256_of


@pytest.fixture(scope="module")
def lupi_crops(sysu_data):
    return dataset_crops("sysu", sysu_data, ["rgb", "ir"], limit=16)


def _crops(bundle, rgbd_data, lupi_crops, limit=24):
    """The rgbd model's id, and crops of every model of the bundle (the rgbd model's from ``rgbd_data``)."""
    model = next(m for m in bundle.manifest.models if m.space == "rgbd")
    other = {m.id: lupi_crops for m in bundle.manifest.models if m.space != "rgbd"}
    return model.id, {model.id: dataset_crops("robotpku", rgbd_data, ["rgb", "depth"], limit=limit), **other}


def _rgbd_only(bundle_dir: Path, out: Path) -> Path:
    """A copy of the shared bundle (the distillation model's rgb/depth files are edited in the copy)."""
    shutil.copytree(bundle_dir, out)
    return out


def _edit_onnx(root: Path, modality: str, edit) -> str:
    """Rewrites the rgbd model's ONNX file of ``modality`` with ``edit(graph)`` and fixes the manifest's checksum."""
    manifest = json.loads((root / MANIFEST).read_text())
    bundle = load_bundle(root)
    model = next(m for m in bundle.manifest.models if m.space == "rgbd")
    entry = next(e for e in bundle.embedders("onnx") if e.model == model.id and e.modality == modality)
    path = root / entry.path
    m = onnx.load(str(path))
    edit(m.graph)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    for f in manifest["files"]:
        if f["path"] == entry.path:
            f["sha256"], f["bytes"] = sha256_of(path), path.stat().st_size
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return entry.path


def _prepend(graph, nodes, inits):
    """Feeds the graph input through ``nodes`` (input name -> 'pre_out') before the original network."""
    name = graph.input[0].name
    for n in graph.node:
        n.input[:] = ["pre_out" if i == name else i for i in n.input]
    for i, n in enumerate(nodes):
        graph.node.insert(i, n)
    graph.initializer.extend(inits)


def _wrong_mean_std(graph):
    # Exported as if the crops were normalised with mean 0.5 / std 0.5 instead of ImageNet's:
    # x_imagenet -> x_wrong = (x * std_in + mean_in - 0.5) / 0.5, i.e. an affine map baked into the graph.
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    scale = (std / 0.5).reshape(1, 3, 1, 1).astype(np.float32)
    shift = ((mean - 0.5) / 0.5).reshape(1, 3, 1, 1).astype(np.float32)
    _prepend(graph, [helper.make_node("Mul", [graph.input[0].name, "pre_scale"], ["pre_mul"]),
                     helper.make_node("Add", ["pre_mul", "pre_shift"], ["pre_out"])],
             [numpy_helper.from_array(scale, "pre_scale"), numpy_helper.from_array(shift, "pre_shift")])


def _bgr(graph):
    idx = numpy_helper.from_array(np.array([2, 1, 0], np.int64), "pre_idx")
    _prepend(graph, [helper.make_node("Gather", [graph.input[0].name, "pre_idx"], ["pre_out"], axis=1)], [idx])


def _unnormalised(graph):
    out = graph.output[0].name
    for n in graph.node:
        n.output[:] = ["post_in" if o == out else o for o in n.output]
    graph.initializer.append(numpy_helper.from_array(np.array(3.0, np.float32), "post_scale"))
    graph.node.append(helper.make_node("Mul", ["post_in", "post_scale"], [out]))


@pytest.mark.parametrize(("edit", "reason"), [
    (_wrong_mean_std, "preprocessing baked in (mean/std"),
    (_bgr, "colour order swapped"),
    (_unnormalised, "not L2-normalised"),
], ids=["wrong-mean-std", "bgr", "unnormalised"])
def test_broken_export_fails_with_its_reason(bundle_dir, rgbd_data, lupi_crops, tmp_path, edit, reason):
    root = _rgbd_only(bundle_dir, tmp_path / "b")
    broken = _edit_onnx(root, "rgb", edit)
    bundle = load_bundle(root)
    model, crops = _crops(bundle, rgbd_data, lupi_crops)
    report = verify_bundle(bundle, crops, runtimes=("onnx",))
    assert not report.ok
    bad = [f for f in report.files if not f.ok]
    assert [f.path for f in bad] == [broken], report.table()
    assert reason in bad[0].reason, bad[0].reason
    assert "FAIL: " in report.table() and reason in report.table()


def test_exact_export_passes_and_reports_both_figures(bundle_dir, rgbd_data, lupi_crops):
    bundle = load_bundle(bundle_dir)
    model, crops = _crops(bundle, rgbd_data, lupi_crops)
    report = verify_bundle(bundle, crops, runtimes=("onnx",))
    assert report.ok, report.table()
    d = report.to_dict()
    assert all({"identical", "identical_tol", "tolerance"} <= set(r) for r in d["rankings"])
    assert "up to ties" in report.table() and all(f["norm_tol"] is not None for f in d["files"])


def test_exact_export_of_a_near_chance_model_with_ties_passes(bundle_dir, rgbd_data, lupi_crops, monkeypatch):
    """Exact ties in the reference (repeated crops), reordered by 1e-7 noise in the runtime: raw < 100 %, PASS."""
    bundle = load_bundle(bundle_dir)
    model, crops = _crops(bundle, rgbd_data, lupi_crops, limit=6)
    tied = {**crops, model: {m: CropSet(c.crops * 5, np.tile(c.pids, 5)) for m, c in crops[model].items()}}
    real = verify_mod.open_embedder
    rng = np.random.default_rng(0)

    class Noisy:
        def __init__(self, emb):
            self.emb, self.preprocess = emb, emb.preprocess

        def embed(self, c):
            e = self.emb.embed(c)
            e = e + rng.normal(0, 1e-7, e.shape).astype(np.float32)
            return e / np.linalg.norm(e, axis=1, keepdims=True)

        def embed_batch(self, x):
            return self.emb.embed_batch(x)

    monkeypatch.setattr(verify_mod, "open_embedder",
                        lambda b, e, d="cpu": Noisy(real(b, e, d)) if e.runtime == "onnx" else real(b, e, d))
    report = verify_bundle(bundle, tied, runtimes=("onnx",))
    rows = [r for r in report.rankings if r.model == model]
    assert min(r.identical for r in rows) < 1.0, "the noise should reorder exact ties (raw figure)"
    assert all(r.identical_tol == 1.0 for r in rows) and report.ok, report.table()


def test_topk_agreement_counts_only_swaps_beyond_the_tolerance():
    q = np.array([[1.0, 0.0]], np.float32)
    g = np.array([[0.6, 0.8], [0.6, 0.8], [0.0, 1.0]], np.float32)  # items 0 and 1 tie exactly
    g_noisy = g.copy()
    g_noisy[1] = [0.6 + 1e-6, 0.8]  # the runtime ranks item 1 first: a reordering of the tie
    assert topk_agreement(q, g, q, g_noisy, 2, tol=1e-5) == (0.0, 1.0, 2)
    # a real swap (reference distances 1.0 vs 0.4) counts, whatever the tolerance of ties
    far = np.array([[0.0, 1.0], [0.6, 0.8], [0.6, 0.8]], np.float32)
    moved = far.copy()
    moved[0] = [1.0, 0.0]
    assert topk_agreement(q, far, q, moved, 2, tol=1e-5) == (0.0, 0.0, 2)
