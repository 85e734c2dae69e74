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
                    device: str = "cpu", classes: Sequence[int | str] | None = None,
                    progress: Callable[[str], None] | None = None) -> tuple[Path, dict[str, Any]]:
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
        classes: Class ids or names the detector keeps as people (``--detector-classes``); None: its ``person``
            class. The same rule as ``detector.classes`` at run time
            (:func:`reidstream.pipeline.detect.yolo.select_classes`); recorded as ``detect_classes``.
        progress: Called with one-line status messages.

    Returns:
        ``(path, fields)``: the exported file and the manifest fields of a ``DetectorFile``
        (without path and checksum).

    Raises:
        FileNotFoundError: no such weights file.
        RuntimeError: ultralytics is not installed, or its export failed.
        ValueError: unknown runtime, a model without a ``person`` class and no ``classes``, or ``classes``
            the model does not have (listing its classes).
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
        from reidstream.pipeline.detect.yolo import class_names, select_classes

        ids = class_names(model.names)
        chosen = select_classes(ids, classes, str(weights), key="--detector-classes")
        names = {str(k): v for k, v in ids.items()}
        person = [k for k, v in sorted(ids.items()) if v == "person"] or chosen
        if progress:
            progress(f"detector: exporting {weights.name} to {runtime} at {imgsz}x{imgsz}")
        out_dir.mkdir(parents=True, exist_ok=True)
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
            shutil.move(str(produced), dest)
    fields = {"role": "detector", "runtime": runtime, "precision": "fp16" if half and runtime == "tensorrt" else "fp32",
              "modalities": list(modalities), "imgsz": [imgsz, imgsz], "classes": names, "person_class": person[0],
              "detect_classes": chosen, "source": weights.name}
    return dest, fields
