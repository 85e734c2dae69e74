"""Checkpoints -> a model bundle: every embedder on every runtime, the detector, and the manifest.

The bundle is built in a temporary sibling directory and renamed into place
only when every file is written and the manifest validates, so a failed export
never leaves a half-written bundle nor touches an existing one (``force``
replaces it only after the new one is complete).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from reidstream.export.onnx_export import DEFAULT_OPSET, NormalizedEmbedder, export_onnx
from reidstream.pipeline.bundle import (MANIFEST, BatchRange, Bundle, BundleError, EmbedderFile, load_bundle,
                                        sha256_of)
from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.preprocess import Preprocess
from reidstream.pipeline.embed.torch_backend import TORCH_FILE_FORMAT
from reidstream.training.checkpoint import Centred, LoadedEmbedder, load_checkpoint, load_embedders
from reidstream.training.methods import METHODS

RUNTIMES = ("torch", "onnx", "tensorrt")
COLOUR_ORDER = {"rgb": "RGB", "depth": "depth", "ir": "gray", "thermal": "gray"}


def tool_versions(extra: Sequence[str] = ()) -> dict[str, str | None]:
    """Versions of the packages that produce a bundle (None: not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("reid-stream", "torch", "onnx", "onnxruntime", "onnxslim", "numpy", "opencv-python", *extra):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _init_of(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """What initialised a checkpoint's networks, from its training config (None: random)."""
    model = config.get("model") or {}
    if not model.get("pretrained"):
        return None
    from reidstream.training.models.pretrained import weights_info

    try:
        return weights_info(model["pretrained"], model.get("arch", ""))
    except (RuntimeError, ValueError) as exc:  # weights not installed here: record the name only
        return {"source": model["pretrained"], "arch": model.get("arch"), "note": str(exc)}


def _model_id(method: str, space: str, taken: set[str]) -> str:
    """The method's name; with a second model of that method, the method and its space (``supervised-rgb``)."""
    model_id = method if method not in taken else f"{method}-{space}"
    base, n = model_id, 1
    while model_id in taken:
        n += 1
        model_id = f"{base}-{n}"
    taken.add(model_id)
    return model_id


def _entry_fields(model_id: str, space: str, emb: LoadedEmbedder, dim: int, batch: BatchRange) -> dict[str, Any]:
    p = emb.preprocess
    return {"role": "embedder", "model": model_id, "modality": emb.modality, "space": space,
            "input": {"channels": p.channels, "height": p.height, "width": p.width,
                      "colour_order": COLOUR_ORDER[emb.modality], "batch": batch.to_dict()},
            "preprocess": p.to_dict(), "output": {"dim": dim, "normalized": True, "distance": "cosine"}}


def _entry(fields: Mapping[str, Any], path: Path, root: Path, **extra: Any) -> EmbedderFile:
    """A validated manifest entry for a written file (checksum computed from disk)."""
    data = dict(fields, path=path.relative_to(root).as_posix(), sha256=sha256_of(path), bytes=path.stat().st_size,
                **extra)
    return config_from_mapping(EmbedderFile, data, f"{path} (manifest entry)")


def _with_file(meta_fields: Mapping[str, Any], runtime: str, precision: str = "fp32",
               engine: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The complete metadata of one file (defaults filled in), as the file itself will carry it."""
    data = dict(meta_fields, runtime=runtime, precision=precision, engine=engine, path="-", sha256="0" * 64,
                bytes=0)
    return config_from_mapping(EmbedderFile, data, f"{meta_fields['model']}-{meta_fields['modality']}").metadata()


def _save_torch(emb_entry: Mapping[str, Any], metadata: Mapping[str, Any], path: Path,
                centre: np.ndarray | None = None) -> None:
    data = {"format": TORCH_FILE_FORMAT, "model": emb_entry["model"], "config": emb_entry["config"],
            "options": emb_entry.get("options", {}), "state_dict": emb_entry["state_dict"],
            "reid_stream": json.dumps(dict(metadata), sort_keys=True)}
    if centre is not None:
        data["centre"] = torch.from_numpy(np.asarray(centre, np.float32))
    torch.save(data, path)


def export_bundle(checkpoints: Sequence[str | Path], out: str | Path, *, runtimes: Sequence[str] = ("torch", "onnx"),
                  precision: str = "fp16", batch: BatchRange | None = None, opset: int = DEFAULT_OPSET,
                  simplify: bool = False, calibration: Mapping[str, Sequence[np.ndarray]] | None = None,
                  detector: str | Path | None = None, detector_runtimes: Sequence[str] = ("onnx",),
                  detector_modalities: Sequence[str] = ("rgb",), detector_imgsz: int = 640,
                  detector_classes: Sequence[int | str] | None = None,
                  eval_metrics: Mapping[str, Mapping[str, Any]] | None = None,
                  centres: Mapping[str, str | Path] | None = None, centre_layout: str = "folder",
                  centre_limit: int = 5000, force: bool = False,
                  progress: Callable[[str], None] | None = print) -> Bundle:
    """Exports the embedders of training checkpoints (and optionally a YOLO detector) as one bundle.

    Args:
        checkpoints: Training checkpoints (``best.pt`` / ``last.pt``). Each keeps its own embedding
            space; two checkpoints may not claim the same space.
        out: Bundle directory to create.
        runtimes: Any of ``torch`` (the weights, for the PyTorch backend and parity checks),
            ``onnx`` and ``tensorrt`` (built from the ONNX export on this machine's GPU).
        precision: TensorRT precision: ``fp32``, ``fp16`` or ``int8`` (needs ``calibration``).
        batch: Batch range of every embedder (the TensorRT optimisation profile).
        opset: ONNX opset.
        simplify: Simplify the ONNX graphs with onnxslim.
        calibration: Modality -> raw crops (as the pipeline cuts them) for INT8 calibration.
        detector: An ultralytics YOLO ``.pt`` (trusted) to export alongside.
        detector_runtimes: Runtimes of the detector (``onnx``, ``tensorrt``, ``torch``).
        detector_modalities: Modalities the detector sees.
        detector_imgsz: Detector input size.
        detector_classes: Class ids or names the detector keeps as people (None: its ``person`` class; a
            model without one needs them), recorded in the manifest as ``detect_classes``.
        eval_metrics: Checkpoint path (as given) -> evaluation metrics (e.g. ``reid-eval``'s metrics.json).
        centres: Embedding space -> dataset root: that space's networks subtract each modality's mean unit
            embedding over the dataset's training crops before normalising (:mod:`reidstream.export.centring`);
            recorded in the manifest as the model's ``centre``.
        centre_layout: Layout of the ``centres`` datasets.
        centre_limit: Crops per modality for each mean.
        force: Replace an existing bundle at ``out`` (only once the new one is complete).
        progress: Called with one-line status messages (None: quiet).

    Returns:
        The written bundle, loaded back and verified.

    Raises:
        FileExistsError: ``out`` exists and ``force`` is false.
        ValueError / BundleError: an unknown method, a space claimed twice, a bad option (before anything is written).
    """
    say = progress or (lambda _msg: None)
    out = Path(out)
    batch = batch or BatchRange()
    bad = sorted(set(runtimes) - set(RUNTIMES))
    if bad or not runtimes:
        raise ValueError(f"runtimes: expected some of {list(RUNTIMES)}, got {list(runtimes)}")
    if precision not in ("fp32", "fp16", "int8"):
        raise ValueError(f"precision: expected fp32, fp16 or int8, got {precision!r}")
    if out.exists() and not force:
        raise FileExistsError(f"{out}: already exists; choose another directory or pass --force to replace it")
    if not checkpoints and detector is None:
        raise ValueError("nothing to export: give at least one checkpoint or a detector")
    centres = dict(centres or {})
    # Read and check everything before writing anything.
    models, taken, spaces = [], set(), {}
    for ckpt_path in map(Path, checkpoints):
        ckpt = load_checkpoint(ckpt_path)
        method = str(ckpt.get("method", ""))
        if method not in METHODS:
            raise BundleError(f"{ckpt_path}: unknown training method {method!r}; expected one of {sorted(METHODS)}")
        space = str(ckpt.get("space") or "")
        if not space:
            raise BundleError(f"{ckpt_path}: checkpoint records no embedding space ('space')")
        if space in spaces:
            raise BundleError(f"{ckpt_path}: embedding space {space!r} is already taken by {spaces[space]}; "
                              f"separately trained models are not comparable, train them with distinct 'space' ids")
        spaces[space] = ckpt_path
        embedders = load_embedders(ckpt_path)
        model_id = _model_id(method, space, taken)
        metrics = {"validation": ckpt.get("metrics") or {}, "best": ckpt.get("best") or {}}
        if eval_metrics and str(ckpt_path) in eval_metrics:
            metrics["evaluation"] = dict(eval_metrics[str(ckpt_path)])
        config = json.loads(ckpt.get("config") or "{}")
        info = {"id": model_id, "method": method, "space": space, "checkpoint": ckpt_path.name,
                "checkpoint_sha256": sha256_of(ckpt_path), "config": config,
                "metrics": json.loads(json.dumps(metrics, default=float)), "init": _init_of(config)}
        models.append((ckpt_path, ckpt, embedders, info))
    unknown = sorted(set(centres) - set(spaces))
    if unknown:
        raise ValueError(f"centres: no checkpoint has the embedding space(s) {unknown}; the spaces are {sorted(spaces)}")
    means: dict[str, dict[str, np.ndarray]] = {}  # model id -> modality -> mean unit embedding
    for _, _, embedders, info in models:
        if info["space"] in centres:
            from reidstream.export.centring import embedding_centres

            means[info["id"]], info["centre"] = embedding_centres(embedders, centres[info["space"]],
                                                                  layout=centre_layout, limit=centre_limit,
                                                                  progress=say)
    if "tensorrt" in runtimes:
        from reidstream.export.tensorrt_build import tensorrt_available

        if not tensorrt_available():
            raise RuntimeError("runtime tensorrt: TensorRT and a CUDA GPU are needed to build engines on this "
                               "machine (engines are tied to the GPU they are built on); pip install tensorrt")
        if precision == "int8" and not calibration:
            raise ValueError("precision int8: calibration crops are needed (reid-export --calib-data ...)")

    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        files: list[dict[str, Any]] = []
        for ckpt_path, ckpt, embedders, info in models:
            for modality, emb in embedders.items():
                c, h, w = emb.preprocess.shape
                centre = means.get(info["id"], {}).get(modality)
                module = NormalizedEmbedder(emb.module if centre is None else Centred(emb.module, centre)).eval()
                with torch.no_grad():
                    dim = int(module(torch.zeros(1, c, h, w)).shape[1])
                fields = _entry_fields(info["id"], info["space"], emb, dim, batch)
                stem = f"{info['id']}-{modality}"
                if "torch" in runtimes:
                    say(f"{stem}: PyTorch weights")
                    meta = _with_file(fields, "torch")
                    _save_torch(ckpt["embedders"][modality], meta, tmp / f"{stem}.pt", centre)
                    files.append(_entry(meta, tmp / f"{stem}.pt", tmp).model_dump(mode="json"))
                if "onnx" in runtimes or "tensorrt" in runtimes:
                    say(f"{stem}: ONNX (opset {opset}{', simplified' if simplify else ''})")
                    meta = _with_file(fields, "onnx")
                    export_onnx(module, tmp / f"{stem}.onnx", input_shape=(c, h, w), metadata=meta, opset=opset,
                                simplify=simplify)
                    files.append(_entry(meta, tmp / f"{stem}.onnx", tmp).model_dump(mode="json"))
                if "tensorrt" in runtimes:
                    files.append(_build_engine(tmp, stem, fields, (c, h, w), batch, precision,
                                               (calibration or {}).get(modality), say))
            if "onnx" not in runtimes:
                for f in [f for f in files if f["runtime"] == "onnx" and f["model"] == info["id"]]:
                    (tmp / f["path"]).unlink()
                    files.remove(f)
        if detector is not None:
            from reidstream.export.detector import export_detector

            for rt in detector_runtimes:
                path, fields = export_detector(detector, tmp, runtime=rt, imgsz=detector_imgsz,
                                               half=precision == "fp16", modalities=detector_modalities,
                                               classes=detector_classes, progress=say)
                files.append(dict(fields, path=path.name, sha256=sha256_of(path), bytes=path.stat().st_size))
        manifest = {"format": "reid-stream-bundle-v1",
                    "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "versions": tool_versions(("tensorrt", "ultralytics")),
                    "models": [m[3] for m in models], "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        load_bundle(tmp)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"bundle written: {out} ({len(files)} files)")
    return load_bundle(out)


def _build_engine(root: Path, stem: str, fields: Mapping[str, Any], shape: tuple[int, int, int], batch: BatchRange,
                  precision: str, crops: Sequence[np.ndarray] | None,
                  say: Callable[[str], None]) -> dict[str, Any]:
    from reidstream.export.tensorrt_build import build_engine

    calibration = None
    if precision == "int8":
        if not crops:
            raise ValueError(f"{stem}: precision int8 needs calibration crops of modality {fields['modality']!r}")
        prep = Preprocess.from_dict(fields["preprocess"])
        calibration = np.stack([prep(c) for c in crops])
    path = root / f"{stem}-{precision}.engine"
    say(f"{stem}: TensorRT {precision} engine, batch {batch.min}/{batch.opt}/{batch.max} (this takes minutes)")
    info = build_engine(root / f"{stem}.onnx", path, input_name="images", input_shape=shape, batch=batch,
                        precision=precision, calibration=calibration, progress=say)
    meta = _with_file(fields, "tensorrt", precision, info.to_dict())
    return _entry(meta, path, root).model_dump(mode="json")


__all__ = ["RUNTIMES", "export_bundle", "tool_versions"]