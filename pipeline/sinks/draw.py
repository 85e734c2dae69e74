"""Drawing a :class:`FrameResult` as one BGR picture: modality tiles side by side, boxes, status bar.

Used by the video sink and the live window. Depth, IR and thermal are colourised with
:func:`reidstream.pipeline.viz.colourize`; every tile is scaled to the height of the frame's reference
stream (colour if present). Placeholder tiles (a stream the frame lacks, or colour hidden for privacy)
are flat grey and everything drawn on them is grey or white, so no colour reaches them.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Mapping

import cv2
import numpy as np

from reidstream.pipeline.result import FrameResult
from reidstream.pipeline.types import Alignment, Modality
from reidstream.pipeline.viz import colourize, label

DEFAULT_TILES = ("rgb", "depth", "ir")
PRIVACY_GREY = 128
MISSING_GREY = 48
NEUTRAL = (220, 220, 220)
UNDECIDED = (160, 160, 160)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LINE_H = 18


def parse_tiles(tiles: Iterable[Modality | str], owner: str = "tiles") -> tuple[Modality, ...]:
    """Tile names -> modalities; ``ValueError`` naming ``owner`` and the bad name."""
    out = []
    for t in tiles:
        try:
            out.append(Modality(t))
        except ValueError:
            raise ValueError(f"{owner}: expected tiles among {[m.value for m in Modality]}, got {t!r}") from None
    if not out:
        raise ValueError(f"{owner}: expected at least one tile, got none")
    return tuple(out)


def identity_colour(key: str) -> tuple[int, int, int]:
    """A bright BGR colour that is the same for the same identity in every run (hue from a hash of the name)."""
    hue = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=4).digest(), "big") % 180
    bgr = cv2.cvtColor(np.array([[[hue, 210, 255]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def _placeholder(size: tuple[int, int], grey: int, caption: str) -> np.ndarray:
    w, h = size
    tile = np.full((h, w, 3), grey, np.uint8)
    return label(tile, caption)


def _tile(result: FrameResult, m: Modality, privacy: bool, ref_h: int) -> tuple[np.ndarray, float, bool]:
    """One tile, its scale from the stream's pixels, and whether it is a (colourless) placeholder."""
    f = result.frame
    img = getattr(f, m.value)
    w_ref, _ = f.size
    if m is Modality.RGB and privacy:
        h, w = img.shape[:2] if img is not None else (ref_h, w_ref)
        scale = ref_h / h
        return _placeholder((max(1, round(w * scale)), ref_h), PRIVACY_GREY, "rgb hidden"), scale, True
    if img is None:
        return _placeholder((w_ref, ref_h), MISSING_GREY, f"no {m.value}"), 1.0, True
    tile = colourize(m, img)
    scale = ref_h / img.shape[0]
    if tile.shape[0] != ref_h:
        tile = cv2.resize(tile, (max(1, round(tile.shape[1] * scale)), ref_h), interpolation=cv2.INTER_NEAREST)
    return label(np.ascontiguousarray(tile), m.value), scale, False


def _boxes(tile: np.ndarray, result: FrameResult, scale: float, neutral: bool) -> None:
    det = result.detections
    pending = {m.track_id for m in result.matches if m.pending}
    for k in range(len(det)):
        ident = result.identities[k]
        tid = int(det.track_ids[k])
        text = ident or (f"t{tid} pending" if tid in pending else (f"t{tid}" if tid >= 0 else "?"))
        colour = NEUTRAL if neutral else (identity_colour(ident) if ident else UNDECIDED)
        x1, y1, x2, y2 = (int(round(float(v) * scale)) for v in det.boxes[k])
        cv2.rectangle(tile, (x1, y1), (x2, y2), colour, 2)
        (tw, th), _ = cv2.getTextSize(text, _FONT, 0.45, 1)
        ty = y1 - 4 if y1 - th - 6 >= 0 else y1 + th + 4
        cv2.rectangle(tile, (x1, ty - th - 3), (x1 + tw + 4, ty + 3), colour, -1)
        cv2.putText(tile, text, (x1 + 2, ty), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)


def status_lines(result: FrameResult, fps: float | None = None) -> list[str]:
    """The two lines of the status bar: frame, FPS, detector and people; per-stage latency."""
    head = f"#{result.index} {result.frame.camera_id}"
    if fps is not None:
        head += f"  {fps:.1f} FPS"
    if result.detector:
        head += f"  det:{result.detector}"
    head += f"  people:{len(result.detections)}"
    lines = [head]
    lat: Mapping[str, float] = result.latency_ms
    lines.append(" | ".join(f"{k} {v:.1f}" for k, v in lat.items()) + " ms" if lat else "latency n/a")
    return lines


def render_mosaic(result: FrameResult, tiles: Iterable[Modality | str] = DEFAULT_TILES, privacy: bool = False,
                  fps: float | None = None) -> np.ndarray:
    """Draws a result as a BGR ``uint8`` picture.

    Args:
        result: The frame and what the pipeline decided about it.
        tiles: Modalities shown left to right; a stream the frame lacks is a dark grey tile.
        privacy: Never draw colour pixels: the rgb tile becomes a flat grey placeholder (boxes on it
            are drawn in light grey, so the tile stays colourless).
        fps: Throughput shown in the status bar (None: not shown).

    Returns:
        ``H x W x 3`` BGR image: the tiles (all of the reference stream's height) above a status bar
        with frame number, FPS, detector, people count and per-stage latency in milliseconds.
    """
    mods = parse_tiles(tiles, "render_mosaic")
    f = result.frame
    ref_h = f.size[1]
    det_mod = result.detections.modality
    aligned = f.alignment is Alignment.ALIGNED_TO_COLOR
    parts = []
    for m in mods:
        tile, scale, placeholder = _tile(result, m, privacy, ref_h)
        if aligned or m is det_mod:
            _boxes(tile, result, scale, neutral=placeholder)
        parts.append(tile)
    mosaic = np.concatenate(parts, axis=1)
    lines = status_lines(result, fps)
    bar = np.zeros((_LINE_H * len(lines) + 6, mosaic.shape[1], 3), np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(bar, text, (6, _LINE_H * (i + 1)), _FONT, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return np.ascontiguousarray(np.concatenate([mosaic, bar], axis=0))


__all__ = ["DEFAULT_TILES", "identity_colour", "parse_tiles", "render_mosaic", "status_lines"]
