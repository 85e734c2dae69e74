"""Cutting per-modality crops of detected people out of a frame.

Detectors report boxes in the frame's *reference* pixel grid: the colour image
when the frame has one, otherwise its first stream (see
:func:`reference_modality`). Crops of every other modality are cut at the same
place in that modality's own grid:

* ``ALIGNED_TO_COLOR`` frames: every stream shares the reference grid, the box
  is used as it is.
* ``UNALIGNED`` frames: the box is mapped through normalised image coordinates,
  ``x_n = (x - cx) / fx``, from the reference intrinsics to the stream's
  (``frame.stream_intrinsics``). This assumes the streams share their optical
  centre and orientation; it ignores the baseline between the sensors (a few
  centimetres on RGB-D cameras), so boxes of near people are off by up to
  ``fx * baseline / z`` pixels, and it ignores lens distortion. Without
  intrinsics for a stream, the box is scaled by the ratio of the image sizes
  (the same field of view is assumed). Register the streams (align depth/IR to
  colour in the camera SDK) where this matters.

Depth crops keep the frame's dtype (``uint16`` millimetres or ``float32``
metres), IR and thermal crops stay single-channel. Every crop is a copy, so it
outlives the frame's buffers.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from reidstream.pipeline.types import Alignment, Crops, Detections, Frame, Intrinsics, Modality


def reference_modality(frame: Frame) -> Modality:
    """The modality whose pixel grid boxes are given in: colour if present, else the first stream."""
    return Modality.RGB if frame.rgb is not None else frame.modalities[0]


def intrinsics_of(frame: Frame, modality: Modality | str) -> Intrinsics | None:
    """Intrinsics of one stream of ``frame``, or None when the frame does not say.

    Aligned streams share the reference intrinsics (``frame.intrinsics``); unaligned
    streams use ``frame.stream_intrinsics`` (the reference stream falls back to
    ``frame.intrinsics``).
    """
    m = Modality(modality)
    own = frame.stream_intrinsics.get(m)
    if frame.alignment is Alignment.ALIGNED_TO_COLOR:
        return frame.intrinsics or own
    if own is not None:
        return own
    return frame.intrinsics if m is reference_modality(frame) else None


def map_boxes(boxes: np.ndarray, src: Intrinsics, dst: Intrinsics) -> np.ndarray:
    """Maps ``N x 4`` pixel boxes between two pinhole cameras with a common optical centre.

    Box edges are continuous pixel coordinates (pixel ``i`` spans ``[i, i + 1)``,
    its centre is ``i + 0.5``, intrinsics refer to pixel centres).
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    sx, sy = dst.fx / src.fx, dst.fy / src.fy
    out = np.empty_like(b)
    out[:, 0::2] = (b[:, 0::2] - 0.5 - src.cx) * sx + dst.cx + 0.5
    out[:, 1::2] = (b[:, 1::2] - 0.5 - src.cy) * sy + dst.cy + 0.5
    return out.astype(np.float32)


def boxes_in(frame: Frame, boxes: np.ndarray, modality: Modality | str,
             source: Modality | str | None = None) -> np.ndarray:
    """Boxes given in the grid of ``source`` (default: the reference stream) in the grid of ``modality``."""
    m = Modality(modality)
    src = reference_modality(frame) if source is None else Modality(source)
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    if frame.alignment is Alignment.ALIGNED_TO_COLOR or m is src:
        return b.copy()
    ki, ko = intrinsics_of(frame, src), intrinsics_of(frame, m)
    if ki is not None and ko is not None:
        return map_boxes(b, ki, ko)
    (hi, wi), (ho, wo) = frame.image(src).shape[:2], frame.image(m).shape[:2]
    return (b * np.array([wo / wi, ho / hi, wo / wi, ho / hi], np.float32)).astype(np.float32)


def _padded(boxes: np.ndarray, pad: float) -> np.ndarray:
    if pad == 0.0 or len(boxes) == 0:
        return boxes.astype(np.float32)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    d = np.stack([-w, -h, w, h], axis=1) * np.float32(pad)
    return (boxes + d).astype(np.float32)


def _pixel_bounds(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Integer ``x1, y1, x2, y2`` (end exclusive) covering the boxes, clipped to the image."""
    b = np.asarray(boxes, np.float64)
    lo = np.floor(b[:, :2] + 1e-6)
    hi = np.ceil(b[:, 2:] - 1e-6)
    out = np.concatenate([lo, hi], axis=1)
    out[:, 0::2] = np.clip(out[:, 0::2], 0, width)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, height)
    return out.astype(np.int64)


def _modalities(frame: Frame, modalities: Iterable[Modality | str] | None) -> list[Modality]:
    if modalities is None:
        return list(frame.modalities)
    out = []
    for m in modalities:
        m = Modality(m)
        if getattr(frame, m.value) is None:
            raise KeyError(f"frame {frame.index} of camera '{frame.camera_id}' has no {m.value} image to crop")
        if m not in out:
            out.append(m)
    return out


def valid_boxes(detections: Detections, min_size: float = 8.0, *, frame: Frame | None = None,
                modalities: Sequence[Modality | str] | None = None, pad: float = 0.0) -> Detections:
    """The detections whose boxes give crops of at least ``min_size`` pixels per side.

    Call it before :func:`cut_crops`: a degenerate box (zero area, outside the image,
    or a sliver after clipping) would make a crop no embedder can use, and
    :class:`~reidstream.pipeline.types.Crops` holds exactly one crop per box.

    Args:
        detections: Boxes in the reference grid of the frame.
        min_size: Smallest accepted width and height, in pixels of every checked stream.
        frame: When given, boxes are padded by ``pad``, mapped into each stream in
            ``modalities`` (default: all of the frame's) and clipped to its image first.
        modalities: Streams to check (with ``frame``).
        pad: The padding :func:`cut_crops` will apply.

    Returns:
        The kept detections, in their order, with their scores and track ids.
    """
    boxes = detections.boxes
    if frame is None:
        keep = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    else:
        keep = np.ones(len(detections), bool)
        padded = _padded(boxes, pad)
        for m in _modalities(frame, modalities):
            h, w = frame.image(m).shape[:2]
            px = _pixel_bounds(boxes_in(frame, padded, m), w, h)
            keep &= ((px[:, 2] - px[:, 0]) >= min_size) & ((px[:, 3] - px[:, 1]) >= min_size)
    if keep.all():
        return detections
    return Detections(boxes[keep], detections.scores[keep], detections.track_ids[keep], detections.modality,
                      detections.frame_index)


def cut_crops(frame: Frame, detections: Detections, modalities: Iterable[Modality | str] | None = None, *,
              pad: float = 0.0) -> Crops:
    """One crop per detection in each requested modality of ``frame``.

    Args:
        frame: The frame the detections were found in.
        detections: Boxes in the frame's reference grid (see the module docstring);
            drop degenerate ones first with :func:`valid_boxes`.
        modalities: Streams to crop (default: every stream of the frame).
        pad: Padding added on each side as a fraction of the box width/height
            (0.1 = 10 % more context left, right, above and below).

    Returns:
        :class:`Crops` with the padded boxes clipped to the reference image, and the track ids.

    Raises:
        KeyError: a requested modality is missing from the frame.
        ValueError: ``pad`` is negative or not finite, or a box leaves an empty crop in some stream.
    """
    if not np.isfinite(pad) or pad < 0:
        raise ValueError(f"cut_crops.pad: expected a fraction >= 0, got {pad!r}")
    mods = _modalities(frame, modalities)
    padded = _padded(detections.boxes, pad)
    images: dict[Modality, tuple[np.ndarray, ...]] = {}
    for m in mods:
        img = frame.image(m)
        h, w = img.shape[:2]
        px = _pixel_bounds(boxes_in(frame, padded, m), w, h)
        empty = np.flatnonzero((px[:, 2] <= px[:, 0]) | (px[:, 3] <= px[:, 1]))
        if empty.size:
            i = int(empty[0])
            raise ValueError(f"cut_crops: box {i} {detections.boxes[i].tolist()} leaves an empty {m.value} crop "
                             f"in frame {frame.index}; drop degenerate boxes first with valid_boxes()")
        images[m] = tuple(img[y1:y2, x1:x2].copy() for x1, y1, x2, y2 in px.tolist())
    ref = reference_modality(frame)
    rh, rw = frame.image(ref).shape[:2]
    clipped = padded.copy()
    clipped[:, 0::2] = np.clip(clipped[:, 0::2], 0, rw)
    clipped[:, 1::2] = np.clip(clipped[:, 1::2], 0, rh)
    return Crops(images, clipped, detections.track_ids, frame.index)


__all__ = ["boxes_in", "cut_crops", "intrinsics_of", "map_boxes", "reference_modality", "valid_boxes"]
