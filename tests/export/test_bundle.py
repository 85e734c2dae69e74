"""Export of distillation and LUPI checkpoints to one bundle, reloaded with ONNX Runtime; bad bundles fail early."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from reidstream.export.bundle import export_bundle
from reidstream.export.verify import dataset_crops, topk_lists
from reidstream.pipeline.bundle import MANIFEST, ONNX_METADATA_KEY, BundleError, load_bundle
from reidstream.pipeline.embed import open_backend, open_embedder
from reidstream.training.checkpoint import load_checkpoint, load_embedders, save_checkpoint


def test_bundle_describes_every_file(bundle_dir, distill_ckpt, lupi_ckpt):
    b = load_bundle(bundle_dir)
    assert b.spaces == {"rgbd": ["depth", "rgb"], "rgbir": ["rgb", "ir"]}
    assert [m.method for m in b.manifest.models] == ["distill", "lupi"]
    assert b.manifest.models[0].config["method"]["name"] == "distill"
    assert b.manifest.versions["onnxruntime"] and b.manifest.versions["torch"]
    assert {(e.model, e.modality, e.runtime) for e in b.embedders()} == {
        (m, mod, rt) for m, mods in (("distill", ("rgb", "depth")), ("lupi", ("rgb", "ir")))
        for mod in mods for rt in ("torch", "onnx")}
    for e in b.embedders():
        assert (e.input.height, e.input.width, e.input.channels) == (64, 32, 3)
        assert e.output.normalized and e.output.distance == "cosine"
        assert e.preprocess["modality"] == e.modality
        assert e.input.colour_order == {"rgb": "RGB", "depth": "depth", "ir": "gray"}[e.modality]
    depth = next(e for e in b.embedders("onnx") if e.modality == "depth")
    assert depth.preprocess["depth_max_m"] == 8.0
    # The same metadata is inside each ONNX file.
    model = onnx.load(str(b.path(depth)), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props[ONNX_METADATA_KEY]) == depth.metadata()
    assert props["reid_stream.space"] == "rgbd" and props["reid_stream.modality"] == "depth"


@pytest.mark.parametrize("model,layout,data", [("distill", "robotpku", "rgbd_data"), ("lupi", "sysu", "sysu_data")])
def test_onnx_runtime_matches_pytorch_on_real_crops(bundle_dir, distill_ckpt, lupi_ckpt, request, model, layout,
                                                    data):
    """Acceptance: cosine >= 0.9999 against the checkpoint's own PyTorch network, identical top-5 rankings."""
    ckpt = {"distill": distill_ckpt, "lupi": lupi_ckpt}[model]
    b = load_bundle(bundle_dir)
    reference = load_embedders(ckpt)
    crops = dataset_crops(layout, request.getfixturevalue(data), list(reference), limit=60)
    emb = {}
    for modality, ref in reference.items():
        entry = next(e for e in b.embedders("onnx") if e.model == model and e.modality == modality)
        onnx_emb = open_embedder(b, entry).embed(crops[modality].crops)
        x = torch.from_numpy(np.stack([ref.preprocess(c) for c in crops[modality].crops]))
        torch_emb = torch.nn.functional.normalize(ref.embed(x), dim=1).numpy()
        cos = np.sum(onnx_emb * torch_emb, axis=1)
        assert cos.min() >= 0.9999, f"{model}/{modality}: min cosine {cos.min()}"
        emb[modality] = (torch_emb, onnx_emb)
    (qa, qb), (ga, gb) = emb.values()
    assert np.array_equal(topk_lists(qa, ga, 5), topk_lists(qb, gb, 5))
    assert np.array_equal(topk_lists(ga, qa, 5), topk_lists(gb, qb, 5))


def test_onnx_batch_axis_is_dynamic(bundle_dir):
    b = load_bundle(bundle_dir)
    entry = b.embedders("onnx")[0]
    backend = open_backend(b.path(entry), entry)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3, 64, 32)).astype(np.float32)
    whole = backend(x)
    assert whole.shape == (7, entry.output.dim)
    np.testing.assert_allclose(np.concatenate([backend(x[:1]), backend(x[1:])]), whole, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-5)


def _copy(bundle_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(bundle_dir, out)
    return out


def test_altered_file_is_named(bundle_dir, tmp_path):
    b = _copy(bundle_dir, tmp_path)
    with open(b / "lupi-ir.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match=r"lupi-ir\.onnx: checksum mismatch"):
        load_bundle(b)


def test_missing_file_is_named(bundle_dir, tmp_path):
    b = _copy(bundle_dir, tmp_path)
    (b / "distill-rgb.pt").unlink()
    with pytest.raises(BundleError, match=r"distill-rgb\.pt: listed in .*manifest\.json but missing"):
        load_bundle(b)


def test_manifest_rejects_unknown_keys_and_paths_outside(bundle_dir, tmp_path):
    b = _copy(bundle_dir, tmp_path)
    m = json.loads((b / MANIFEST).read_text())
    m["files"][0]["colour"] = "RGB"
    (b / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(BundleError, match=r"manifest\.json.*files\.0\.colour.*unknown key"):
        load_bundle(b)
    m["files"][0].pop("colour")
    m["files"][0]["path"] = "../outside.onnx"
    (b / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(BundleError, match="relative path inside the bundle"):
        load_bundle(b)
    (b / MANIFEST).unlink()
    with pytest.raises(BundleError, match="manifest.json: missing"):
        load_bundle(b)


def test_onnx_without_metadata_is_refused(bundle_dir, tmp_path):
    b = load_bundle(bundle_dir)
    entry = b.embedders("onnx")[0]
    model = onnx.load(str(b.path(entry)))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    with pytest.raises(BundleError, match=r"bare\.onnx: has no reid-stream metadata"):
        open_backend(bare, None)
    # A file used outside its bundle describes itself.
    backend = open_backend(b.path(entry), None)
    assert backend.entry.modality == entry.modality and backend.entry.space == entry.space


def test_manifest_entry_edited_to_disagree_with_the_file(bundle_dir, tmp_path):
    b = _copy(bundle_dir, tmp_path)
    m = json.loads((b / MANIFEST).read_text())
    i = next(i for i, f in enumerate(m["files"]) if f["path"] == "distill-depth.onnx")
    m["files"][i]["preprocess"]["depth_max_m"] = 6.0
    (b / MANIFEST).write_text(json.dumps(m))
    bundle = load_bundle(b)
    entry = next(e for e in bundle.embedders("onnx") if e.path == "distill-depth.onnx")
    with pytest.raises(BundleError, match=r"distill-depth\.onnx: metadata inside the file differs.*preprocess"):
        open_embedder(bundle, entry)


def test_unknown_method_and_shared_space_are_refused_before_writing(distill_ckpt, lupi_ckpt, tmp_path):
    ckpt = load_checkpoint(distill_ckpt)
    save_checkpoint(tmp_path / "odd.pt", dict(ckpt, method="mystery"))
    with pytest.raises(BundleError, match=r"odd\.pt: unknown training method 'mystery'"):
        export_bundle([tmp_path / "odd.pt"], tmp_path / "b1", progress=None)
    save_checkpoint(tmp_path / "same.pt", dict(load_checkpoint(lupi_ckpt), space="rgbd"))
    with pytest.raises(BundleError, match=r"same\.pt: embedding space 'rgbd' is already taken"):
        export_bundle([distill_ckpt, tmp_path / "same.pt"], tmp_path / "b2", progress=None)
    assert not (tmp_path / "b1").exists() and not (tmp_path / "b2").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_existing_bundle_is_kept_unless_forced(distill_ckpt, tmp_path):
    out = tmp_path / "b"
    export_bundle([distill_ckpt], out, runtimes=("onnx",), progress=None)
    first = (out / MANIFEST).read_text()
    with pytest.raises(FileExistsError, match="already exists"):
        export_bundle([distill_ckpt], out, progress=None)
    assert (out / MANIFEST).read_text() == first
    b = export_bundle([distill_ckpt], out, runtimes=("torch", "onnx"), force=True, progress=None)
    assert {e.runtime for e in b.embedders()} == {"torch", "onnx"}
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, *(e.path for e in b.embedders())])


def test_importing_the_pipeline_backends_imports_no_runtime():
    code = ("import sys, reidstream.pipeline.embed, reidstream.pipeline.bundle; "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'tensorrt', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_binary_manifest_or_file_names_the_file(tmp_path):
    root = tmp_path / "bundle"
    root.mkdir()
    (root / MANIFEST).write_bytes(bytes(range(256)) * 4)  # not UTF-8
    with pytest.raises(BundleError, match=rf"{MANIFEST}: not a text file \(byte 128 is not UTF-8.*expected the JSON "
                                          r"manifest of a model bundle"):
        load_bundle(root)
    blob = tmp_path / "model.onnx"
    blob.write_bytes(b"\x08\x07\x12\x00")
    with pytest.raises(BundleError, match=r"model\.onnx: is a file; expected a model bundle directory"):
        load_bundle(blob)


def test_two_models_of_one_method_are_named_by_their_space(distill_ckpt, tmp_path):
    teacher = load_checkpoint(distill_ckpt.parent.parent / "depth" / "best.pt")  # method supervised
    for space in ("ir", "rgb"):
        save_checkpoint(tmp_path / f"{space}.pt", dict(teacher, space=space))
    export_bundle([tmp_path / "ir.pt", tmp_path / "rgb.pt"], tmp_path / "b", runtimes=("onnx",), progress=None)
    manifest = json.loads((tmp_path / "b" / MANIFEST).read_text())
    assert [(m["id"], m["space"]) for m in manifest["models"]] == [("supervised", "ir"), ("supervised-rgb", "rgb")]
    assert sorted(p.name for p in (tmp_path / "b").glob("*.onnx")) == ["supervised-depth.onnx",
                                                                        "supervised-rgb-depth.onnx"]
