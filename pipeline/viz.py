"""Turning images of any modality into viewable 8-bit BGR pictures (previews, live window, videos)."""

from __future__ import annotations

import cv2
import numpy as np

from reidstream.pipeline.types import Modality


def colourize(modality: Modality | str, image: np.ndarray, depth_range_mm: tuple[float, float] = (300, 8000),
              thermal_range_c: tuple[float, float] = (15.0, 40.0)) -> np.ndarray:
    """A BGR uint8 picture of one image: colour as is, depth with the TURBO map (holes black),
    IR as grey, thermal with the INFERNO map over a fixed temperature range (so it is comparable
    across frames). ``uint16`` thermal is read as centi-kelvin, ``uint8`` thermal as display-scaled.
    """
    m = Modality(modality)
    if m is Modality.RGB:
        return np.ascontiguousarray(image[..., ::-1])
    if m is Modality.DEPTH:
        d = image.astype(np.float32) * (1000.0 if image.dtype == np.float32 else 1.0)
        lo, hi = depth_range_mm
        v = np.clip((d - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8)
        out = cv2.applyColorMap(v, cv2.COLORMAP_TURBO)
        out[(d <= 0) | ~np.isfinite(d)] = 0
        return out
    if m is Modality.IR:
        v = (image >> 8).astype(np.uint8) if image.dtype == np.uint16 else image
        return cv2.cvtColor(v, cv2.COLOR_GRAY2BGR)
    return cv2.applyColorMap(thermal_to_uint8(image, thermal_range_c), cv2.COLORMAP_INFERNO)


def label(image: np.ndarray, text: str) -> np.ndarray:
    """Writes a caption in the top-left corner (in place) and returns the image."""
    cv2.putText(image, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def thermal_to_uint8(image: np.ndarray, range_c: tuple[float, float] = (15.0, 40.0)) -> np.ndarray:
    """Display-scaled 8-bit thermal (as datasets such as RegDB store it) from radiometric thermal.

    ``uint16`` is read as centi-kelvin, ``float32`` as deg C; ``range_c`` maps linearly to 0..255.
    """
    if image.dtype == np.uint8:
        return image
    c = image.astype(np.float32) if image.dtype == np.float32 else image.astype(np.float32) / 100 - 273.15
    lo, hi = range_c
    return np.clip((np.nan_to_num(c, nan=lo) - lo) / (hi - lo) * 255 + 0.5, 0, 255).astype(np.uint8)
