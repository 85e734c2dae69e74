"""Typed values passed between the stages of the pipeline.

Every value is a frozen dataclass that validates itself on construction, so a
stage that receives one can rely on its shapes, dtypes and units. A bad value
raises ``ValueError`` naming the field and what was expected.

Conventions:
    * Images are numpy arrays in row-major ``H x W`` (x ``C``) layout.
    * Colour is RGB order (not OpenCV's BGR), ``uint8``.
    * Depth is either ``uint16`` in millimetres or ``float32`` in metres, as
      declared by :class:`DepthUnit`; 0 (or NaN for float) means "no depth".
    * IR is ``uint8`` or ``uint16`` counts.
    * Thermal is ``uint8`` (display-scaled, non-radiometric), ``uint16``
      (radiometric, 0.01 K per count, as FLIR Lepton TLinear) or ``float32``
      degrees Celsius.
    * Boxes are ``x1, y1, x2, y2`` in pixels of the colour image (or of the
      image the detector ran on, for unaligned streams).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np


class Modality(str, enum.Enum):
    """Sensing modality of an image stream."""

    RGB = "rgb"
    DEPTH = "depth"
    IR = "ir"
    THERMAL = "thermal"


class DepthUnit(str, enum.Enum):
    """Unit of a depth image: ``uint16`` millimetres or ``float32`` metres."""

    MILLIMETRE = "mm"
    METRE = "m"


class Alignment(str, enum.Enum):
    """Registration state of the non-colour streams of a frame.

    ``ALIGNED_TO_COLOR``: depth/IR/thermal pixel (u, v) sees the same ray as
    colour pixel (u, v). ``UNALIGNED``: each stream has its own geometry.
    """

    ALIGNED_TO_COLOR = "aligned_to_color"
    UNALIGNED = "unaligned"


def _fail(owner: str, name: str, expected: str, got: str) -> ValueError:
    return ValueError(f"{owner}.{name}: expected {expected}, got {got}")


def _describe(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"array of shape {a.shape} and dtype {a.dtype}"
    return f"{type(a).__name__} {a!r}"[:120]


def _check_image(owner: str, name: str, a: object, dtypes: tuple, channels: int | None) -> None:
    """Checks an image array: 2-D (or H x W x channels), dtype in ``dtypes``."""
    names = "/".join(np.dtype(d).name for d in dtypes)
    shape = "H x W x 3" if channels else "H x W"
    expected = f"a {shape} numpy array of dtype {names}"
    if not isinstance(a, np.ndarray):
        raise _fail(owner, name, expected, _describe(a))
    ok_shape = a.ndim == 3 and a.shape[2] == channels if channels else a.ndim == 2
    if not ok_shape or a.shape[0] == 0 or a.shape[1] == 0 or a.dtype not in dtypes:
        raise _fail(owner, name, expected, _describe(a))


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole camera intrinsics (Brown-Conrady distortion coefficients optional).

    Attributes:
        width: Image width in pixels.
        height: Image height in pixels.
        fx: Focal length along x, in pixels.
        fy: Focal length along y, in pixels.
        cx: Principal point x, in pixels.
        cy: Principal point y, in pixels.
        distortion: ``k1, k2, p1, p2, k3`` or empty for an ideal pinhole.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise _fail("Intrinsics", name, "a positive integer", _describe(v))
        for name in ("fx", "fy"):
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.number)) or not math.isfinite(v) or v <= 0:
                raise _fail("Intrinsics", name, "a positive finite focal length in pixels", _describe(v))
        for name in ("cx", "cy"):
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.number)) or not math.isfinite(v):
                raise _fail("Intrinsics", name, "a finite principal point in pixels", _describe(v))
        if len(self.distortion) not in (0, 4, 5, 8):
            raise _fail("Intrinsics", "distortion", "0, 4, 5 or 8 coefficients", _describe(self.distortion))
        object.__setattr__(self, "distortion", tuple(float(d) for d in self.distortion))

    @classmethod
    def realsense_d435(cls, width: int = 640, height: int = 480) -> "Intrinsics":
        """Typical colour intrinsics of an Intel RealSense D435 (69 x 42 deg FOV)."""
        sx, sy = width / 640.0, height / 480.0
        return cls(width, height, 615.0 * sx, 615.0 * sy, 319.5 * sx, 239.5 * sy)

    @property
    def matrix(self) -> np.ndarray:
        """The 3 x 3 camera matrix K."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=np.float64)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Projects N x 3 camera-frame points (z forward, metres) to N x 2 pixels."""
        p = np.asarray(points, dtype=np.float64)
        return np.stack([self.fx * p[:, 0] / p[:, 2] + self.cx, self.fy * p[:, 1] / p[:, 2] + self.cy], axis=1)

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (the inverse of :meth:`from_dict`)."""
        return {"width": self.width, "height": self.height, "fx": self.fx, "fy": self.fy,
                "cx": self.cx, "cy": self.cy, "distortion": list(self.distortion)}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Intrinsics":
        """Builds intrinsics from :meth:`to_dict` output."""
        return cls(int(d["width"]), int(d["height"]), float(d["fx"]), float(d["fy"]),
                   float(d["cx"]), float(d["cy"]), tuple(d.get("distortion", ())))


_IMAGE_RULES: dict[Modality, tuple[tuple, int | None]] = {
    Modality.RGB: ((np.uint8,), 3),
    Modality.DEPTH: ((np.uint16, np.float32), None),
    Modality.IR: ((np.uint8, np.uint16), None),
    Modality.THERMAL: ((np.uint8, np.uint16, np.float32), None),
}


@dataclass(frozen=True, eq=False)
class Frame:
    """One capture of a camera: any subset of colour, depth, IR and thermal.

    Attributes:
        rgb: ``H x W x 3`` uint8, RGB order.
        depth: ``H x W`` uint16 (millimetres) or float32 (metres), see ``depth_unit``.
        ir: ``H x W`` uint8 or uint16.
        thermal: ``H x W`` uint8, uint16 (0.01 K) or float32 (deg C).
        intrinsics: Intrinsics of the colour stream (or of the only stream).
        timestamp: Capture time in seconds (monotonic or epoch, per source).
        index: Frame number within its source, from 0.
        camera_id: Name of the camera that captured the frame.
        depth_unit: Unit of ``depth``; must match its dtype.
        alignment: Whether depth/IR/thermal are registered to colour.
        stream_intrinsics: Per-stream intrinsics for unaligned streams.
    """

    rgb: np.ndarray | None = None
    depth: np.ndarray | None = None
    ir: np.ndarray | None = None
    thermal: np.ndarray | None = None
    intrinsics: Intrinsics | None = None
    timestamp: float = 0.0
    index: int = 0
    camera_id: str = "cam0"
    depth_unit: DepthUnit = DepthUnit.MILLIMETRE
    alignment: Alignment = Alignment.ALIGNED_TO_COLOR
    stream_intrinsics: Mapping[Modality, Intrinsics] = field(default_factory=dict)

    def __post_init__(self) -> None:
        present = self.modalities
        if not present:
            raise ValueError("Frame: expected at least one of rgb, depth, ir, thermal; got none")
        for m in present:
            dtypes, channels = _IMAGE_RULES[m]
            _check_image("Frame", m.value, getattr(self, m.value), dtypes, channels)
        object.__setattr__(self, "depth_unit", DepthUnit(self.depth_unit))
        object.__setattr__(self, "alignment", Alignment(self.alignment))
        if self.depth is not None:
            want = np.uint16 if self.depth_unit is DepthUnit.MILLIMETRE else np.float32
            if self.depth.dtype != want:
                raise _fail("Frame", "depth", f"dtype {np.dtype(want).name} for depth_unit "
                            f"'{self.depth_unit.value}'", _describe(self.depth))
        if self.alignment is Alignment.ALIGNED_TO_COLOR:
            shapes = {m.value: getattr(self, m.value).shape[:2] for m in present}
            if len(set(shapes.values())) > 1:
                raise _fail("Frame", "alignment", "all streams of the same H x W when aligned to colour",
                            f"sizes {shapes}")
        if self.intrinsics is not None:
            if not isinstance(self.intrinsics, Intrinsics):
                raise _fail("Frame", "intrinsics", "an Intrinsics", _describe(self.intrinsics))
            ref = Modality.RGB if self.rgb is not None else present[0]
            self._check_size("intrinsics", ref, self.intrinsics)
        streams = {}
        for key, intr in dict(self.stream_intrinsics).items():
            m = Modality(key)
            if not isinstance(intr, Intrinsics):
                raise _fail("Frame", f"stream_intrinsics[{m.value}]", "an Intrinsics", _describe(intr))
            if getattr(self, m.value) is not None:
                self._check_size(f"stream_intrinsics[{m.value}]", m, intr)
            streams[m] = intr
        object.__setattr__(self, "stream_intrinsics", streams)
        if not isinstance(self.timestamp, (int, float, np.floating)) or not math.isfinite(self.timestamp):
            raise _fail("Frame", "timestamp", "a finite number of seconds", _describe(self.timestamp))
        if not isinstance(self.index, (int, np.integer)) or isinstance(self.index, bool) or self.index < 0:
            raise _fail("Frame", "index", "a non-negative integer", _describe(self.index))
        if not isinstance(self.camera_id, str) or not self.camera_id:
            raise _fail("Frame", "camera_id", "a non-empty string", _describe(self.camera_id))

    def _check_size(self, name: str, m: Modality, intr: Intrinsics) -> None:
        h, w = getattr(self, m.value).shape[:2]
        if (intr.height, intr.width) != (h, w):
            raise _fail("Frame", name, f"a size matching the {m.value} image {w}x{h}",
                        f"{intr.width}x{intr.height}")

    @property
    def modalities(self) -> tuple[Modality, ...]:
        """The modalities this frame carries, in canonical order."""
        return tuple(m for m in Modality if getattr(self, m.value) is not None)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the reference (first present) stream."""
        h, w = self.image(self.modalities[0]).shape[:2]
        return w, h

    def image(self, modality: Modality | str) -> np.ndarray:
        """The image of one modality; ``KeyError`` if the frame lacks it."""
        m = Modality(modality)
        img = getattr(self, m.value)
        if img is None:
            raise KeyError(f"frame {self.index} of camera '{self.camera_id}' has no {m.value} image")
        return img

    def depth_metres(self) -> np.ndarray:
        """Depth as float32 metres with NaN for missing pixels."""
        d = self.image(Modality.DEPTH)
        if self.depth_unit is DepthUnit.MILLIMETRE:
            out = d.astype(np.float32) * np.float32(0.001)
            out[d == 0] = np.nan
            return out
        out = d.astype(np.float32, copy=True)
        out[out <= 0] = np.nan
        return out


def _as_array(owner: str, name: str, a: object, dtype, shape_tail: tuple, n: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=dtype)
    except (TypeError, ValueError):
        raise _fail(owner, name, f"an array convertible to {np.dtype(dtype).name}", _describe(a)) from None
    if arr.ndim == 1 and arr.size == 0 and shape_tail:
        arr = arr.reshape((0,) + shape_tail)
    want = ("N",) + shape_tail
    if arr.shape[1:] != shape_tail or arr.ndim != len(want) or (n is not None and arr.shape[0] != n):
        exp = f"shape ({', '.join(str(s) for s in (n if n is not None else 'N',) + shape_tail)})"
        raise _fail(owner, name, exp, _describe(arr))
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Detections:
    """People found in one frame.

    Attributes:
        boxes: ``N x 4`` float32 ``x1, y1, x2, y2`` with ``x2 >= x1``, ``y2 >= y1``.
        scores: ``N`` float32 confidences in [0, 1].
        track_ids: ``N`` int64 short-term track ids, -1 where untracked.
        modality: The image the boxes were found in.
        frame_index: Index of the frame they belong to.
    """

    boxes: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray | None = None
    modality: Modality = Modality.RGB
    frame_index: int = 0

    def __post_init__(self) -> None:
        boxes = _as_array("Detections", "boxes", self.boxes, np.float32, (4,))
        n = boxes.shape[0]
        if n and (not np.isfinite(boxes).all() or (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any()):
            raise _fail("Detections", "boxes", "finite x1, y1, x2, y2 with x2 >= x1 and y2 >= y1", _describe(boxes))
        scores = _as_array("Detections", "scores", self.scores, np.float32, (), n)
        if n and (not np.isfinite(scores).all() or (scores < 0).any() or (scores > 1).any()):
            raise _fail("Detections", "scores", "values in [0, 1]", _describe(scores))
        tids = np.full(n, -1, np.int64) if self.track_ids is None else self.track_ids
        tids = _as_array("Detections", "track_ids", tids, np.int64, (), n)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "track_ids", tids)
        object.__setattr__(self, "modality", Modality(self.modality))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def empty(cls, modality: Modality = Modality.RGB, frame_index: int = 0) -> "Detections":
        """No detections."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), None, modality, frame_index)


@dataclass(frozen=True, eq=False)
class Crops:
    """Image crops of the detected people, per modality.

    ``images[m][i]`` is the crop of detection ``i`` in modality ``m``; a
    modality missing from the frame is missing from ``images``.

    Attributes:
        images: Modality -> list of N crops (each valid for that modality).
        boxes: ``N x 4`` boxes the crops were cut from (colour pixel frame).
        track_ids: ``N`` track ids of the detections.
        frame_index: Index of the source frame.
    """

    images: Mapping[Modality, tuple[np.ndarray, ...]]
    boxes: np.ndarray
    track_ids: np.ndarray
    frame_index: int = 0

    def __post_init__(self) -> None:
        boxes = _as_array("Crops", "boxes", self.boxes, np.float32, (4,))
        n = boxes.shape[0]
        tids = _as_array("Crops", "track_ids", self.track_ids, np.int64, (), n)
        images: dict[Modality, tuple[np.ndarray, ...]] = {}
        for key, crops in dict(self.images).items():
            m = Modality(key)
            crops = tuple(crops)
            if len(crops) != n:
                raise _fail("Crops", f"images[{m.value}]", f"{n} crops (one per box)", f"{len(crops)}")
            dtypes, channels = _IMAGE_RULES[m]
            for i, c in enumerate(crops):
                _check_image("Crops", f"images[{m.value}][{i}]", c, dtypes, channels)
            images[m] = crops
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "track_ids", tids)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


@dataclass(frozen=True, eq=False)
class Embeddings:
    """Embedding vectors of N crops of one modality, in one embedding space.

    Models whose outputs are compared with each other share a ``space`` id
    (e.g. ``"rgbd"`` for the distilled colour net and the depth net).

    Attributes:
        vectors: ``N x D`` float32, finite.
        modality: Modality of the crops that were embedded.
        space: Embedding space id.
        track_ids: ``N`` track ids, aligned with ``vectors``.
        normalized: Whether rows are L2-normalised (checked when True).
        frame_index: Index of the source frame.
    """

    vectors: np.ndarray
    modality: Modality
    space: str
    track_ids: np.ndarray | None = None
    normalized: bool = True
    frame_index: int = 0

    def __post_init__(self) -> None:
        v = np.asarray(self.vectors)
        if v.ndim != 2 or v.shape[1] == 0 or v.dtype != np.float32 or not np.isfinite(v).all():
            raise _fail("Embeddings", "vectors", "a finite N x D float32 array with D > 0", _describe(v))
        n = v.shape[0]
        if self.normalized and n and not np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3):
            raise _fail("Embeddings", "vectors", "unit-norm rows (normalized=True)", "rows of other norms")
        tids = np.full(n, -1, np.int64) if self.track_ids is None else self.track_ids
        tids = _as_array("Embeddings", "track_ids", tids, np.int64, (), n)
        if not isinstance(self.space, str) or not self.space:
            raise _fail("Embeddings", "space", "a non-empty embedding space id", _describe(self.space))
        v = v.copy()
        v.setflags(write=False)
        object.__setattr__(self, "vectors", v)
        object.__setattr__(self, "track_ids", tids)
        object.__setattr__(self, "modality", Modality(self.modality))

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        """Embedding size D."""
        return int(self.vectors.shape[1])


@dataclass(frozen=True)
class Match:
    """The gallery's decision for one track in one frame.

    Attributes:
        track_id: Short-term track id.
        identity: Long-term identity the track was assigned to.
        distance: Distance to the identity's nearest gallery entry (>= 0), for rules that decide on one
            distance; the evidence gallery reports 0 and gives ``evidence``.
        modality: Modality of the query observation.
        space: Embedding space the distance was measured in.
        is_new: True when the gallery created ``identity`` for this track.
        frame_index: Index of the frame.
        evidence: Fused log-likelihood ratio behind the decision (same person vs not).
        pending: True while the track is still collecting evidence; ``identity`` is then ``""``.
    """

    track_id: int
    identity: str
    distance: float
    modality: Modality
    space: str
    is_new: bool = False
    frame_index: int = 0
    evidence: float = 0.0
    pending: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.identity, str) or (not self.identity and not self.pending):
            raise _fail("Match", "identity", "a non-empty string (or \"\" while pending)", _describe(self.identity))
        if self.pending and (self.identity or self.is_new):
            raise _fail("Match", "identity", "\"\" and is_new False while pending", _describe(self.identity))
        if not math.isfinite(float(self.evidence)):
            raise _fail("Match", "evidence", "a finite number", _describe(self.evidence))
        if not isinstance(self.distance, (int, float, np.floating)) or not (self.distance >= 0) or math.isinf(self.distance):
            raise _fail("Match", "distance", "a finite number >= 0", _describe(self.distance))
        object.__setattr__(self, "modality", Modality(self.modality))


@dataclass(frozen=True)
class PersonAnnotation:
    """Ground truth for one person in one frame (from the simulator or a labelled recording).

    Attributes:
        identity: Person id, stable across frames, cameras and modalities.
        box: ``x1, y1, x2, y2`` of the whole (amodal) body, clipped to the image.
        visible: Fraction of the body visible in the image, in [0, 1]
            (occlusion by other people and truncation by the image border).
        distance: Distance of the person from the camera in metres (0 if unknown).
    """

    identity: int
    box: tuple[float, float, float, float]
    visible: float
    distance: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.identity, (int, np.integer)) or isinstance(self.identity, bool) or self.identity < 0:
            raise _fail("PersonAnnotation", "identity", "a non-negative integer", _describe(self.identity))
        box = tuple(float(v) for v in self.box)
        if len(box) != 4 or not all(math.isfinite(v) for v in box) or box[2] < box[0] or box[3] < box[1]:
            raise _fail("PersonAnnotation", "box", "finite x1, y1, x2, y2 with x2 >= x1, y2 >= y1", _describe(self.box))
        if not 0.0 <= float(self.visible) <= 1.0:
            raise _fail("PersonAnnotation", "visible", "a fraction in [0, 1]", _describe(self.visible))
        object.__setattr__(self, "identity", int(self.identity))
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "visible", float(self.visible))
        object.__setattr__(self, "distance", float(self.distance))

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (inverse of :meth:`from_dict`)."""
        return {"identity": self.identity, "box": [round(v, 2) for v in self.box],
                "visible": round(self.visible, 4), "distance": round(self.distance, 4)}

    @classmethod
    def from_dict(cls, d: Mapping) -> "PersonAnnotation":
        """Builds an annotation from :meth:`to_dict` output."""
        return cls(int(d["identity"]), tuple(d["box"]), float(d["visible"]), float(d.get("distance", 0.0)))
