"""Per-detection cues beside the embeddings: crop quality, body measures and colour statistics.

:func:`frame_cues` turns one frame's tracked detections (and their
:class:`~reidstream.pipeline.body.measure.BodyMeasures`) into a :class:`TrackCues`, which the gallery
accumulates per track together with the embeddings.

* **Quality** in ``[0, 1]`` weighs a frame in a track's prototypes: a crop cut by the image border,
  a small (far) person or one hidden behind a nearer person carries less identity.
* **Colour statistics**: hue-saturation histograms (OpenCV ``calcHist``) of the upper and lower body,
  restricted to the person's own pixels with the aligned depth (background and people behind are
  left out) and to pixels bright enough to have a hue. Stored as the element-wise square root of the
  normalised histograms, so that the dot product of two such vectors is the mean Bhattacharyya
  coefficient of the two parts, and ``sqrt(1 - dot)`` is their Hellinger distance: matching a track
  against every stored visit is one matrix product. Only while the colour image is usable (lit).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from reidstream.pipeline.types import Alignment, Detections, Frame

H_BINS, S_BINS = 16, 8
COLOUR_DIM = 2 * H_BINS * S_BINS
_PARTS = ((0.18, 0.50), (0.50, 0.88))  # upper body (below the head), lower body (above the feet), box fractions


@dataclass(frozen=True)
class TrackCues:
    """Cues of one frame's tracked detections (rows follow ``track_ids``).

    Attributes:
        track_ids: ``N`` track ids.
        quality: ``N`` weights in [0, 1] of the frame's crops.
        height: ``N`` metric heights (m), NaN when not measured.
        height_sigma: ``N`` their 1-sigma uncertainty (m), inf when not measured.
        width: ``N`` second body measure (m), NaN when not measured.
        width_sigma: ``N`` its uncertainty.
        colour: ``N x COLOUR_DIM`` square-rooted HS histograms (unit rows), or None when the colour
            image is not usable; rows of people without enough coloured pixels are all zero.
        lit: Whether the colour image was usable in this frame.
    """

    track_ids: np.ndarray
    quality: np.ndarray
    height: np.ndarray
    height_sigma: np.ndarray
    width: np.ndarray
    width_sigma: np.ndarray
    colour: np.ndarray | None = None
    lit: bool = True

    def __post_init__(self) -> None:
        n = len(np.asarray(self.track_ids))
        object.__setattr__(self, "track_ids", np.asarray(self.track_ids, np.int64).reshape(-1))
        for name in ("quality", "height", "height_sigma", "width", "width_sigma"):
            a = np.asarray(getattr(self, name), np.float64).reshape(-1)
            if a.shape != (n,):
                raise ValueError(f"TrackCues.{name}: expected {n} values (one per track), got shape {a.shape}")
            object.__setattr__(self, name, a)
        if ((self.quality < 0) | (self.quality > 1) | ~np.isfinite(self.quality)).any():
            raise ValueError(f"TrackCues.quality: expected values in [0, 1], got {self.quality.tolist()}")
        if self.colour is not None:
            c = np.asarray(self.colour, np.float32)
            if c.shape != (n, COLOUR_DIM):
                raise ValueError(f"TrackCues.colour: expected shape ({n}, {COLOUR_DIM}), got {c.shape}")
            object.__setattr__(self, "colour", c)

    def __len__(self) -> int:
        return len(self.track_ids)


def crop_quality(boxes: np.ndarray, size: tuple[int, int], distance: np.ndarray | None = None,
                 margin: float = 2.0, full_height: float = 160.0) -> np.ndarray:
    """Quality of each box's crop in [0, 1]: border cut x size x share not hidden by nearer people.

    Args:
        boxes: ``N x 4`` boxes in an image of ``size = (width, height)``.
        size: Image size.
        distance: ``N`` distances (m) to order people front to back; without them a box whose bottom
            edge is lower in the image is taken as nearer.
        margin: Pixels from the border within which a box counts as cut.
        full_height: Box height (px) from which size no longer lowers the quality.
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    w, h = size
    cut = (b[:, 0] <= margin) | (b[:, 1] <= margin) | (b[:, 2] >= w - margin) | (b[:, 3] >= h - margin)
    border = np.where(cut, 0.25, 1.0)
    bh = b[:, 3] - b[:, 1]
    scale = np.clip((bh - 40.0) / (full_height - 40.0), 0.1, 1.0)
    near = -b[:, 3] if distance is None or not np.isfinite(distance).all() else np.asarray(distance, np.float64)
    area = np.maximum((b[:, 2] - b[:, 0]) * bh, 1.0)
    ix = np.clip(np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]), 0, None)
    covered = ix * iy / area[:, None]
    in_front = near[None, :] < near[:, None]
    hidden = np.where(in_front, covered, 0.0).max(axis=1, initial=0.0)
    return np.clip(border * scale * (1.0 - hidden), 0.0, 1.0)


def colour_histograms(rgb: np.ndarray, boxes: np.ndarray, depth_m: np.ndarray | None = None,
                      distance: np.ndarray | None = None, window: float = 0.45, min_value: int = 40,
                      min_pixels: int = 60) -> np.ndarray:
    """Square-rooted hue-saturation histograms of the upper and lower body of each box (``N x COLOUR_DIM``).

    Args:
        rgb: ``H x W x 3`` uint8 colour image.
        boxes: ``N x 4`` boxes in that image.
        depth_m: Depth aligned to colour in metres (0 = hole), to keep only the person's pixels.
        distance: ``N`` person distances (m) for that depth window; NaN: no depth mask for that box.
        window: Half-width of the depth window around the person (m).
        min_value: Darker pixels have no reliable hue and are left out.
        min_pixels: A part with fewer pixels gives an all-zero half.
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    out = np.zeros((len(b), COLOUR_DIM), np.float32)
    hgt, wid = rgb.shape[:2]
    half = H_BINS * S_BINS
    for i, (x1, y1, x2, y2) in enumerate(b):
        xa, xb = int(max(0, np.floor(x1))), int(min(wid, np.ceil(x2)))
        for k, (ta, tb) in enumerate(_PARTS):
            ya, yb = int(max(0, y1 + ta * (y2 - y1))), int(min(hgt, y1 + tb * (y2 - y1)))
            if xb - xa < 2 or yb - ya < 2:
                continue
            hsv = cv2.cvtColor(np.ascontiguousarray(rgb[ya:yb, xa:xb]), cv2.COLOR_RGB2HSV)
            mask = hsv[..., 2] >= min_value
            if depth_m is not None and distance is not None and np.isfinite(distance[i]):
                d = depth_m[ya:yb, xa:xb]
                mask &= np.abs(d - distance[i]) <= window
            if int(mask.sum()) < min_pixels:
                continue
            hist = cv2.calcHist([hsv], [0, 1], mask.astype(np.uint8), [H_BINS, S_BINS], [0, 180, 0, 256])
            hist = hist.reshape(-1) / max(float(hist.sum()), 1e-9)
            out[i, k * half:(k + 1) * half] = np.sqrt(hist) / np.sqrt(2.0)
    return out


IR_BINS = 12
IR_DIM = 2 * IR_BINS


def ir_histograms(ir: np.ndarray, boxes: np.ndarray, depth_m: np.ndarray | None = None,
                  distance: np.ndarray | None = None, window: float = 0.45, top: float = 2.4,
                  min_pixels: int = 60) -> np.ndarray:
    """Square-rooted histograms of infrared intensity relative to the person's median, upper and lower body
    (``N x IR_DIM``): the contrast of garments in near infrared, which stays as the emitter's light falls off
    with distance.

    Args:
        ir: ``H x W`` infrared image (uint8 or uint16) aligned with the boxes.
        boxes: ``N x 4`` boxes in that image.
        depth_m: Depth aligned to it in metres (0 = hole), to keep only the person's pixels.
        distance: ``N`` person distances (m) for that depth window; NaN: no depth mask for that box.
        window: Half-width of the depth window around the person (m).
        top: Relative intensity of the last bin (brighter pixels fall into it).
        min_pixels: A part with fewer pixels gives an all-zero half.
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    out = np.zeros((len(b), IR_DIM), np.float32)
    hgt, wid = ir.shape[:2]
    for i, (x1, y1, x2, y2) in enumerate(b):
        xa, xb = int(max(0, np.floor(x1))), int(min(wid, np.ceil(x2)))
        parts = []
        for ta, tb in _PARTS:
            ya, yb = int(max(0, y1 + ta * (y2 - y1))), int(min(hgt, y1 + tb * (y2 - y1)))
            if xb - xa < 2 or yb - ya < 2:
                parts.append(None)
                continue
            values = ir[ya:yb, xa:xb].astype(np.float64)
            mask = values > 0
            if depth_m is not None and distance is not None and np.isfinite(distance[i]):
                mask &= np.abs(depth_m[ya:yb, xa:xb] - distance[i]) <= window
            parts.append(values[mask] if int(mask.sum()) >= min_pixels else None)
        known = [v for v in parts if v is not None]
        if not known:
            continue
        median = float(np.median(np.concatenate(known)))
        if median <= 0:
            continue
        for k, v in enumerate(parts):
            if v is None:
                continue
            hist, _ = np.histogram(np.minimum(v / median, top * 0.999), bins=IR_BINS, range=(0.0, top))
            hist = hist / max(float(hist.sum()), 1e-9)
            out[i, k * IR_BINS:(k + 1) * IR_BINS] = np.sqrt(hist) / np.sqrt(2.0)
    return out


def frame_cues(frame: Frame, detections: Detections, measures=None, lit: bool | None = True, *,
               colour: np.ndarray | None = None) -> TrackCues:
    """The cues of one frame's tracked detections (boxes in the colour/reference image).

    Args:
        frame: The frame.
        detections: Tracked detections (``track_ids`` >= 0).
        measures: Their :class:`~reidstream.pipeline.body.measure.BodyMeasures` (rows follow
            ``detections``), or None without depth.
        lit: Whether the colour image is usable; None (unknown) counts as usable when there is colour.
        colour: Their :func:`colour_histograms`, when already computed (rows follow ``detections``).
    """
    n = len(detections)
    w, h = frame.size
    dist = None if measures is None else np.asarray(measures.distance, np.float64)
    quality = crop_quality(detections.boxes, (w, h), dist)
    use_colour = frame.rgb is not None and lit is not False
    if use_colour and colour is not None:
        colour = np.asarray(colour, np.float32).reshape(n, COLOUR_DIM)
    elif use_colour:
        depth = None
        if frame.depth is not None and frame.alignment is Alignment.ALIGNED_TO_COLOR and dist is not None:
            depth = frame.depth_metres()
        colour = colour_histograms(frame.rgb, detections.boxes, depth, dist)
    else:
        colour = None
    if measures is None:
        nan, inf = np.full(n, np.nan), np.full(n, np.inf)
        return TrackCues(detections.track_ids, quality, nan, inf, nan, inf, colour, bool(use_colour))
    return TrackCues(detections.track_ids, quality, measures.height, measures.height_sigma, measures.width,
                     measures.width_sigma, colour, bool(use_colour))


__all__ = ["COLOUR_DIM", "IR_DIM", "TrackCues", "colour_histograms", "crop_quality", "frame_cues", "ir_histograms"]
