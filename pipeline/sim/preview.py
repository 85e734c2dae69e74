"""A PNG mosaic of what the simulated camera sees: every modality for a few frames, plus person crops."""

from __future__ import annotations

import cv2
import numpy as np

from reidstream.pipeline.sources.base import AnnotatedFrame
from reidstream.pipeline.viz import colourize, label


def crop_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """Integer pixel window ``x0, y0, x1, y1`` of a float box, clipped to the image (at least 1 px)."""
    x0, y0 = int(np.clip(np.floor(box[0]), 0, width - 1)), int(np.clip(np.floor(box[1]), 0, height - 1))
    x1, y1 = int(np.clip(np.ceil(box[2]), x0 + 1, width)), int(np.clip(np.ceil(box[3]), y0 + 1, height))
    return x0, y0, x1, y1


def mosaic(frames: list[AnnotatedFrame], tile_width: int = 320, crops_per_frame: int = 3,
           min_visible: float = 0.5) -> np.ndarray:
    """Rows of ``[rgb | depth | ir | thermal]`` tiles with ground-truth boxes, then a row of crops.

    Each crop column shows one person in every modality, stacked vertically.
    """
    rows, crops = [], []
    for af in frames:
        f = af.frame
        w, h = f.size
        scale = tile_width / w
        tiles = []
        for m in f.modalities:
            t = colourize(m, f.image(m)).copy()
            for a in af.annotations:
                x0, y0, x1, y1 = crop_box(a.box, w, h)
                cv2.rectangle(t, (x0, y0), (x1 - 1, y1 - 1), (0, 255, 0), 2)
                cv2.putText(t, f"id{a.identity} {a.visible:.0%}", (x0 + 2, max(y0 - 4, 12)),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 0), 1, cv2.LINE_AA)
            tiles.append(label(cv2.resize(t, (tile_width, int(h * scale)), interpolation=cv2.INTER_AREA),
                               f"{m.value} #{f.index}"))
        rows.append(np.hstack(tiles))
        best = sorted((a for a in af.annotations if a.visible >= min_visible), key=lambda a: -a.visible)
        for a in best[:crops_per_frame]:
            x0, y0, x1, y1 = crop_box(a.box, w, h)
            cells = [cv2.resize(colourize(m, f.image(m)[y0:y1, x0:x1]), (64, 128), interpolation=cv2.INTER_AREA)
                     for m in f.modalities]
            crops.append(label(np.vstack(cells), f"id{a.identity}"))
    out = np.vstack(rows)
    if crops:
        strip = np.hstack(crops)[:, : out.shape[1]]
        pad = np.zeros((strip.shape[0], out.shape[1] - strip.shape[1], 3), np.uint8)
        out = np.vstack([out, np.hstack([strip, pad])])
    return out

