"""An ultralytics YOLO person detector on colour, IR or thermal images.

ultralytics loads all three bundle runtimes itself (``YOLO(path, task="detect")``
takes a ``.pt``, an ``.onnx`` through ONNX Runtime, or a TensorRT ``.engine``);
it is imported only when a detector is built, so the pipeline imports without it.

Input conventions: colour frames are RGB and are handed to ultralytics as BGR
(its convention for numpy images); single-channel IR and thermal images are
brought to ``uint8`` (``uint8`` as is; ``uint16``/``float32`` stretched between the
frame's 1st and 99th percentiles) and stacked to three identical channels.
Only the chosen classes are kept (:func:`select_classes`: the model's ``person`` class unless
``detector.classes`` names others, e.g. ``[Normal, Fall]``); the same rule picks the classes of
``reid-export bundle --detector`` (``--detector-classes``), which the manifest records. Boxes come back
in the frame's reference grid (see :func:`reidstream.pipeline.crops.boxes_in` for unaligned streams).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from reidstream.pipeline.bundle import Bundle, DetectorFile
from reidstream.pipeline.crops import boxes_in, reference_modality
from reidstream.pipeline.types import Detections, Frame, Modality

_YOLO_MODALITIES = (Modality.RGB, Modality.IR, Modality.THERMAL)


def class_names(names: object) -> dict[int, str]:
    """A model's class names as ``{id: name}`` (ultralytics gives a dict, a list, or string keys in a manifest)."""
    items = enumerate(names) if isinstance(names, (list, tuple)) else dict(names or {}).items()
    return {int(k): str(v) for k, v in items}


def _list_classes(names: Mapping[int, str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(names.items())) or "none"


def select_classes(names: Mapping[int, str] | Sequence[str], wanted: Sequence[int | str] | None, where: str,
                   key: str = "detector.classes") -> list[int]:
    """The class ids a YOLO detector keeps: ``wanted`` (ids or names) or, when None, the ``person`` class.

    The one rule of ``detector.yolo=`` / a bundle's detector at run time and of
    ``reid-export bundle --detector`` (``--detector-classes``).

    Args:
        names: The model's classes, ``{id: name}`` (or a list of names).
        wanted: Class ids or names to keep (a name wins over a digit string that is also an id); None: the
            class named ``person``.
        where: The model file, named in errors.
        key: The setting that chooses the classes, named in errors.

    Returns:
        Distinct class ids, in the order asked for.

    Raises:
        ValueError: ``wanted`` is None and the model has no ``person`` class, or ``wanted`` is empty or names
            a class the model does not have; the message lists the model's classes (ids and names).
    """
    names = class_names(names)
    listed = _list_classes(names)
    if wanted is None:
        person = [k for k, v in sorted(names.items()) if v == "person"]
        if not person:
            example = ",".join(names[k] for k in sorted(names)[:2]) or "0"
            raise ValueError(f"{where}: the detector has no 'person' class (its classes: {listed}); choose the "
                             f"classes to keep as people with {key} (ids or names, e.g. {key}=[{example}])")
        return person[:1]
    if isinstance(wanted, (str, int)):
        wanted = [wanted]
    if not wanted:
        raise ValueError(f"{where}: {key} is empty; expected class ids or names among {listed}")
    by_name = {v: k for k, v in sorted(names.items(), reverse=True)}
    out: list[int] = []
    for w in wanted:
        if isinstance(w, str) and w in by_name:
            k = by_name[w]
        elif ((isinstance(w, (int, np.integer)) and not isinstance(w, bool))
              or (isinstance(w, str) and w.strip().isdigit())) and int(w) in names:
            k = int(w)
        else:
            raise ValueError(f"{where}: {key}: the detector has no class {w!r}; expected ids or names among "
                             f"its classes ({listed})")
        if k not in out:
            out.append(k)
    return out


def to_three_channels(image: np.ndarray, modality: Modality | str) -> np.ndarray:
    """The ``H x W x 3`` uint8 image YOLO is given: BGR for colour, a stretched grey image stacked thrice otherwise."""
    m = Modality(modality)
    if m is Modality.RGB:
        return np.ascontiguousarray(image[..., ::-1])
    if image.dtype == np.uint8:
        grey = image
    else:
        v = image.astype(np.float32)
        finite = v[np.isfinite(v)]
        lo, hi = np.percentile(finite, (1, 99)) if finite.size else (0.0, 1.0)
        grey = np.clip((np.nan_to_num(v, nan=lo) - lo) * (255.0 / max(hi - lo, 1e-6)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))


class YoloDetector:
    """People from one image stream with an ultralytics YOLO model.

    Args:
        model_path: ``.pt``, ``.onnx`` or TensorRT ``.engine`` file.
        modality: Stream it looks at: ``"rgb"``, ``"ir"`` or ``"thermal"``.
        imgsz: Network input size, an int or ``(height, width)`` (exported files need their export size).
        conf: Lowest confidence kept.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (``"0"`` etc. as ultralytics accepts).
        classes: Class ids or names kept as people (``detector.classes``); None: the model's ``person`` class
            (:func:`select_classes`).
        iou: IoU threshold of the non-maximum suppression.
        names: The model's class names ``{id: name}`` when known without loading it (a bundle's manifest);
            None: asked of the model. The first result checks them against the model's.

    Raises:
        ImportError: ultralytics is not installed.
        FileNotFoundError: ``model_path`` does not exist.
        ValueError: a modality YOLO cannot look at; a model without a ``person`` class and no ``classes``, or
            ``classes`` the model does not have (listing its classes); on the first frame, a model whose
            class names differ from ``names``.
    """

    def __init__(self, model_path: str | Path, *, modality: Modality | str = "rgb", imgsz: int | Sequence[int] = 640,
                 conf: float = 0.35, device: str = "cpu", classes: Sequence[int | str] | None = None,
                 iou: float = 0.5, names: Mapping[int | str, str] | None = None) -> None:
        self.modality = Modality(modality)
        if self.modality not in _YOLO_MODALITIES:
            raise ValueError(f"YoloDetector.modality: expected one of rgb, ir, thermal, got {self.modality.value!r}")
        if not 0.0 <= conf <= 1.0:
            raise ValueError(f"YoloDetector.conf: expected a confidence in [0, 1], got {conf!r}")
        self.model_path = Path(model_path)
        if not self.model_path.exists():
            raise FileNotFoundError(f"{self.model_path}: detector model not found")
        self.imgsz = int(imgsz) if isinstance(imgsz, (int, np.integer)) else tuple(int(v) for v in imgsz)
        self.conf, self.iou, self.device = float(conf), float(iou), str(device)
        self.name = f"yolo-{self.modality.value}"
        try:
            from ultralytics import YOLO
        except ImportError as e:
            raise ImportError("YoloDetector needs ultralytics: pip install 'reid-stream[detect]'") from e
        self.model = YOLO(str(self.model_path), task="detect")
        if names is None:
            # Exported files (.onnx, .engine) are loaded to read their names: on this device, as predict will.
            self.model.overrides["device"] = self.device
            names = self.model.names
        self.names = class_names(names)
        self.classes = select_classes(self.names, classes, str(self.model_path))
        self._checked = False

    def _check_names(self, names: object) -> None:
        """Refuses a model whose kept classes are named otherwise than expected (checked on the first result)."""
        self._checked = True
        if not names:
            return
        got = class_names(names)
        for k in self.classes:
            if got.get(k) != self.names.get(k):
                raise ValueError(f"{self.model_path}: class {k} of the model is {got.get(k)!r}, not "
                                 f"{self.names.get(k)!r} as its manifest says (the model's classes: "
                                 f"{_list_classes(got)}); re-export the bundle or set detector.classes")

    @classmethod
    def from_bundle(cls, bundle: Bundle, entry: DetectorFile, *, modality: Modality | str | None = None,
                    conf: float = 0.35, device: str = "cpu", iou: float = 0.5,
                    classes: Sequence[int | str] | None = None) -> "YoloDetector":
        """The detector of a bundle entry: its file, input size and the classes it keeps.

        Args:
            bundle: The loaded bundle.
            entry: One of ``bundle.detectors()``.
            modality: Stream to run on; one of ``entry.modalities`` (default: the first).
            conf: Lowest confidence kept.
            device: Inference device (TensorRT engines need the GPU they were built on).
            iou: NMS IoU threshold.
            classes: Class ids or names to keep instead of those the manifest records (``detect_classes``;
                older bundles: ``person_class``).

        Raises:
            ValueError: ``entry`` is not a detector, it was not exported for ``modality``, or ``classes``
                names a class it does not have.
        """
        if not isinstance(entry, DetectorFile):
            raise ValueError(f"YoloDetector.from_bundle: expected a detector entry, got {type(entry).__name__}")
        m = Modality(modality or entry.modalities[0])
        if m.value not in entry.modalities:
            raise ValueError(f"{bundle.path(entry)}: exported for {entry.modalities}, not for {m.value!r}")
        chosen = classes if classes is not None else (entry.detect_classes or [entry.person_class])
        return cls(bundle.path(entry), modality=m, imgsz=tuple(entry.imgsz), conf=conf, device=device,
                   classes=chosen, iou=iou, names=entry.classes or None)

    def detect(self, frame: Frame) -> Detections:
        """People in ``frame``'s stream of this detector's modality, boxes in the frame's reference grid.

        Raises:
            ValueError: the frame has no image of this detector's modality.
        """
        img = getattr(frame, self.modality.value)
        if img is None:
            raise ValueError(f"{self.name}: frame {frame.index} of camera '{frame.camera_id}' has no "
                             f"{self.modality.value} image")
        h, w = img.shape[:2]
        res = self.model.predict(to_three_channels(img, self.modality), imgsz=self.imgsz, conf=self.conf, iou=self.iou,
                                 classes=list(self.classes), device=self.device, verbose=False)[0]
        if not self._checked:
            self._check_names(getattr(res, "names", None))
        if res.boxes is None or len(res.boxes) == 0:
            return Detections.empty(self.modality, frame.index)
        boxes = np.asarray(res.boxes.xyxy.cpu().numpy(), np.float32).reshape(-1, 4)
        scores = np.asarray(res.boxes.conf.cpu().numpy(), np.float32).reshape(-1)
        cls = np.asarray(res.boxes.cls.cpu().numpy()).reshape(-1).astype(np.int64)
        keep = np.isin(cls, self.classes) & np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
        boxes, scores = boxes[keep], np.clip(scores[keep], 0.0, 1.0)
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
        boxes = boxes_in(frame, boxes, reference_modality(frame), self.modality)
        return Detections(boxes, scores, None, self.modality, frame.index)


__all__ = ["YoloDetector", "class_names", "select_classes", "to_three_channels"]
