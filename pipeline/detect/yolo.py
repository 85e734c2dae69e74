"""An ultralytics YOLO person detector on colour, IR or thermal images.

ultralytics loads all three bundle runtimes itself (``YOLO(path, task="detect")``
takes a ``.pt``, an ``.onnx`` through ONNX Runtime, or a TensorRT ``.engine``);
it is imported only when a detector is built, so the pipeline imports without it.

Input conventions: colour frames are RGB and are handed to ultralytics as BGR
(its convention for numpy images); single-channel IR and thermal images are
brought to ``uint8`` (``uint8`` as is; ``uint16``/``float32`` stretched between the
frame's 1st and 99th percentiles) and stacked to three identical channels.
Only the person class is kept. Boxes come back in the frame's reference grid
(see :func:`reidstream.pipeline.crops.boxes_in` for unaligned streams).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from reidstream.pipeline.bundle import Bundle, DetectorFile
from reidstream.pipeline.crops import boxes_in, reference_modality
from reidstream.pipeline.types import Detections, Frame, Modality

_YOLO_MODALITIES = (Modality.RGB, Modality.IR, Modality.THERMAL)


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
        person_class: Class index of "person" in the model (0 for COCO models).
        iou: IoU threshold of the non-maximum suppression.

    Raises:
        ImportError: ultralytics is not installed.
        FileNotFoundError: ``model_path`` does not exist.
        ValueError: a modality YOLO cannot look at (and, on the first frame, a model whose class
            ``person_class`` is another named class).
    """

    def __init__(self, model_path: str | Path, *, modality: Modality | str = "rgb", imgsz: int | Sequence[int] = 640,
                 conf: float = 0.35, device: str = "cpu", person_class: int = 0, iou: float = 0.5) -> None:
        self.modality = Modality(modality)
        if self.modality not in _YOLO_MODALITIES:
            raise ValueError(f"YoloDetector.modality: expected one of rgb, ir, thermal, got {self.modality.value!r}")
        if not 0.0 <= conf <= 1.0:
            raise ValueError(f"YoloDetector.conf: expected a confidence in [0, 1], got {conf!r}")
        self.model_path = Path(model_path)
        if not self.model_path.exists():
            raise FileNotFoundError(f"{self.model_path}: detector model not found")
        self.imgsz = int(imgsz) if isinstance(imgsz, (int, np.integer)) else tuple(int(v) for v in imgsz)
        self.conf, self.iou, self.device, self.person_class = float(conf), float(iou), str(device), int(person_class)
        self.name = f"yolo-{self.modality.value}"
        try:
            from ultralytics import YOLO
        except ImportError as e:
            raise ImportError("YoloDetector needs ultralytics: pip install 'reid-stream[detect]'") from e
        self.model = YOLO(str(self.model_path), task="detect")
        self._checked = False

    def _check_names(self, names: object) -> None:
        """Refuses a model whose ``person_class`` is another of its named classes (checked on the first result)."""
        self._checked = True
        names = dict(enumerate(names)) if isinstance(names, (list, tuple)) else dict(names or {})
        label = names.get(self.person_class)
        if label is not None and label != "person" and "person" in names.values():
            raise ValueError(f"{self.model_path}: class {self.person_class} is {label!r}, not 'person' (that is class "
                             f"{next(k for k, v in names.items() if v == 'person')}); pass person_class")

    @classmethod
    def from_bundle(cls, bundle: Bundle, entry: DetectorFile, *, modality: Modality | str | None = None,
                    conf: float = 0.35, device: str = "cpu", iou: float = 0.5) -> "YoloDetector":
        """The detector of a bundle entry: its file, input size and person class.

        Args:
            bundle: The loaded bundle.
            entry: One of ``bundle.detectors()``.
            modality: Stream to run on; one of ``entry.modalities`` (default: the first).
            conf: Lowest confidence kept.
            device: Inference device (TensorRT engines need the GPU they were built on).
            iou: NMS IoU threshold.

        Raises:
            ValueError: ``entry`` is not a detector, or it was not exported for ``modality``.
        """
        if not isinstance(entry, DetectorFile):
            raise ValueError(f"YoloDetector.from_bundle: expected a detector entry, got {type(entry).__name__}")
        m = Modality(modality or entry.modalities[0])
        if m.value not in entry.modalities:
            raise ValueError(f"{bundle.path(entry)}: exported for {entry.modalities}, not for {m.value!r}")
        return cls(bundle.path(entry), modality=m, imgsz=tuple(entry.imgsz), conf=conf, device=device,
                   person_class=entry.person_class, iou=iou)

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
                                 classes=[self.person_class], device=self.device, verbose=False)[0]
        if not self._checked:
            self._check_names(getattr(res, "names", None))
        if res.boxes is None or len(res.boxes) == 0:
            return Detections.empty(self.modality, frame.index)
        boxes = np.asarray(res.boxes.xyxy.cpu().numpy(), np.float32).reshape(-1, 4)
        scores = np.asarray(res.boxes.conf.cpu().numpy(), np.float32).reshape(-1)
        cls = np.asarray(res.boxes.cls.cpu().numpy()).reshape(-1).astype(np.int64)
        keep = (cls == self.person_class) & np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
        boxes, scores = boxes[keep], np.clip(scores[keep], 0.0, 1.0)
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
        boxes = boxes_in(frame, boxes, reference_modality(frame), self.modality)
        return Detections(boxes, scores, None, self.modality, frame.index)


__all__ = ["YoloDetector", "to_three_channels"]
