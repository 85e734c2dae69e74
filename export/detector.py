"""The person detector: an ultralytics YOLO ``.pt`` -> ONNX / TensorRT through ultralytics' own exporter.

Note: ultralytics ``.pt`` files are pickles and ultralytics unpickles them to
load them. Pass only weights you trust (an official ultralytics release or your
own training run); the bundle then carries the ONNX / TensorRT export, which
holds no code.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

DETECTOR_FORMATS = {"onnx": ("onnx", ".onnx"), "tensorrt": ("engine", ".engine"), "torch": (None, ".pt")}
"""Runtime -> (ultralytics export format, file suffix)."""


def export_detector(weights: str | Path, out_dir: str | Path, *, runtime: str = "onnx", imgsz: int = 640,
                    half: bool = False, modalities: Sequence[str] = ("rgb",), stem: str = "detector",
                    device: str = "cpu", progress: Callable[[str], None] | None = None) -> tuple[Path, dict[str, Any]]:
    """Exports a YOLO detector for one runtime into ``out_dir``.

    Args:
        weights: The ultralytics ``.pt`` file (trusted; see the module note).
        out_dir: Where to put the exported file.
        runtime: ``"onnx"`` (dynamic batch and image size), ``"tensorrt"`` (needs TensorRT and a GPU)
            or ``"torch"`` (the ``.pt`` itself, copied).
        imgsz: Square network input size in pixels.
        half: FP16 (TensorRT only).
        modalities: Modalities the detector was trained to see (``rgb``, ``ir``, ``thermal``).
        stem: File name stem inside ``out_dir``.
        device: ``cpu`` or a CUDA index (``"0"``); TensorRT export always runs on a GPU.
        progress: Called with one-line status messages.

    Returns:
        ``(path, fields)``: the exported file and the manifest fields of a ``DetectorFile``
        (without path and checksum).

    Raises:
        FileNotFoundError: no such weights file.
        RuntimeError: ultralytics is not installed, or its export failed.
        ValueError: unknown runtime, or a model without a ``person`` class.
    """
    weights, out_dir = Path(weights), Path(out_dir)
    if runtime not in DETECTOR_FORMATS:
        raise ValueError(f"detector runtime: expected one of {sorted(DETECTOR_FORMATS)}, got {runtime!r}")
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: detector weights not found (an ultralytics YOLO .pt)")
    try:
        from ultralytics import YOLO
    except ImportError:
        raise RuntimeError("exporting the detector needs ultralytics; pip install 'reid-stream[detect]'") from None
    fmt, suffix = DETECTOR_FORMATS[runtime]
    dest = out_dir / f"{stem}{suffix}"
    with tempfile.TemporaryDirectory(prefix="reid-export-yolo-") as tmp:
        # ultralytics writes next to its input; work on a copy so the user's folder is left as it was.
        src = Path(tmp) / weights.name
        shutil.copy2(weights, src)
        try:
            model = YOLO(str(src), task="detect")
        except Exception as e:  # noqa: BLE001 - ultralytics raises many types
            raise ValueError(f"{weights}: not an ultralytics YOLO detector ({type(e).__name__}: {e})") from None
        names = {str(k): str(v) for k, v in dict(model.names).items()}
        person = [int(k) for k, v in names.items() if v == "person"]
        if not person:
            raise ValueError(f"{weights}: the detector has no 'person' class (classes: {list(names.values())[:10]})")
        if progress:
            progress(f"detector: exporting {weights.name} to {runtime} at {imgsz}x{imgsz}")
        if fmt is None:
            shutil.copy2(weights, dest)
        else:
            kwargs: dict[str, Any] = {"format": fmt, "imgsz": imgsz, "verbose": False}
            if runtime == "onnx":
                kwargs.update(dynamic=True, simplify=True, device=device)
            else:
                kwargs.update(half=half, dynamic=True, device=device if device != "cpu" else 0)
            try:
                produced = Path(str(model.export(**kwargs)))
            except Exception as e:  # noqa: BLE001 - ultralytics raises many types
                raise RuntimeError(f"{weights}: ultralytics export to {fmt} failed ({type(e).__name__}: {e})") \
                    from None
            out_dir.mkdir(parents=True, exist_ok=True)
            shutil.move(str(produced), dest)
    fields = {"role": "detector", "runtime": runtime, "precision": "fp16" if half and runtime == "tensorrt" else "fp32",
              "modalities": list(modalities), "imgsz": [imgsz, imgsz], "classes": names, "person_class": person[0],
              "source": weights.name}
    return dest, fields
