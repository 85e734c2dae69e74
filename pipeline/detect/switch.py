"""Choosing the detector per frame from the light level: colour while it is usable, else IR or depth.

The rule, per frame:

1. Colour is *usable* while the colour image is bright and clean enough, measured
   on a grid of every ``stride``-th row and column: the mean luma (0-255) must be
   at least ``dark_threshold`` and the noise (robust standard deviation of the
   luma difference between horizontally adjacent pixels, ``1.4826 * MAD / sqrt(2)``)
   at most ``noise_threshold``. The noise test catches dark scenes that auto-gain
   has brightened: they keep a fair mean luma but turn to noise (the simulator's
   ``dark.yaml`` has mean luma ~95 and noise ~23 levels; a lit office ~170 and ~4).
   With hysteresis: once unusable, colour becomes usable again only at
   ``dark_threshold + hysteresis`` and ``noise_threshold - noise_hysteresis``,
   so a light level near the thresholds does not make the detector flicker.
2. Colour usable and a colour detector given -> the colour detector.
3. Otherwise, if the frame has an IR image and an IR detector (a YOLO that
   works on IR) is given -> the IR detector (appearance-based, more precise than
   depth clustering).
4. Otherwise, if the frame has depth and a depth detector is given -> the depth detector.
5. Otherwise the colour detector on whatever colour there is (better than
   nothing), else no detection at all (``last_used`` is None).

A frame without colour counts as "colour unusable" and leaves the hysteresis
state as it was.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from reidstream.pipeline.body.floor import FloorPlane
from reidstream.pipeline.config import ConfigModel
from reidstream.pipeline.detect.base import Detector
from reidstream.pipeline.types import Detections, Frame, Modality

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


class SwitchConfig(ConfigModel):
    """Settings of :class:`AutoDetector` (section ``detect.switch`` of a pipeline config)."""

    dark_threshold: float = Field(50.0, ge=0.0, le=255.0)
    """Mean luma (0-255) below which colour is too dark."""
    hysteresis: float = Field(10.0, ge=0.0)
    """Extra mean luma needed to switch back to colour."""
    noise_threshold: float | None = Field(20.0, gt=0.0)
    """Luma noise (levels) above which colour is unusable; None: no noise test."""
    noise_hysteresis: float = Field(3.0, ge=0.0)
    """How much lower the noise must be to switch back to colour."""
    stride: int = Field(8, ge=1)
    """Measure on every ``stride``-th row and column."""


def light_level(rgb: np.ndarray, stride: int = 8) -> tuple[float, float]:
    """``(mean luma, luma noise)`` of an RGB uint8 image, both in 0-255 levels, on a subsampled grid."""
    rows = rgb[::stride].astype(np.float32)
    w = rows.shape[1]
    grid = rows[:, ::stride] @ _LUMA
    if w < 2:
        return float(grid.mean()), 0.0
    a = rows[:, 0:w - 1:stride] @ _LUMA
    b = rows[:, 1:w:stride] @ _LUMA
    noise = 1.4826 * float(np.median(np.abs(a - b))) / math.sqrt(2.0)
    return float(grid.mean()), noise


class AutoDetector:
    """Runs the colour, IR or depth detector on each frame according to the light (see the module docstring).

    Args:
        colour: Detector on the colour image (a :class:`~reidstream.pipeline.detect.yolo.YoloDetector`).
        depth: Detector on depth (a :class:`~reidstream.pipeline.detect.depth_people.DepthPeopleDetector`).
        ir: Detector on the IR image (a YOLO that works on IR), used before depth when colour is unusable.
        dark_threshold: Mean luma (0-255) below which colour is too dark.
        hysteresis: Extra mean luma needed to switch back to colour.
        noise_threshold: Luma noise above which colour is unusable (None: no noise test).
        noise_hysteresis: How much lower the noise must be to switch back.
        stride: Subsampling of the light measurement.

    Attributes:
        last_used: Which detector ran on the last frame: ``"colour"``, ``"ir"``, ``"depth"`` or None.
        last_light: ``(mean luma, noise)`` of the last frame's colour image, None without colour.
    """

    name = "auto"

    def __init__(self, colour: Detector | None = None, depth: Detector | None = None, *, ir: Detector | None = None,
                 dark_threshold: float = 50.0, hysteresis: float = 10.0, noise_threshold: float | None = 20.0,
                 noise_hysteresis: float = 3.0, stride: int = 8) -> None:
        if colour is None and depth is None and ir is None:
            raise ValueError("AutoDetector: expected at least one of colour, depth, ir detectors")
        self.config = SwitchConfig(dark_threshold=float(dark_threshold), hysteresis=float(hysteresis),
                                   noise_threshold=None if noise_threshold is None else float(noise_threshold),
                                   noise_hysteresis=float(noise_hysteresis), stride=int(stride))
        self.detectors: dict[str, Detector | None] = {"colour": colour, "ir": ir, "depth": depth}
        self.reset()

    @classmethod
    def from_config(cls, cfg: SwitchConfig, colour: Detector | None = None, depth: Detector | None = None,
                    ir: Detector | None = None) -> "AutoDetector":
        """An auto detector over the given detectors with the thresholds of ``cfg``."""
        return cls(colour, depth, ir=ir, **cfg.model_dump())

    @property
    def floor(self) -> FloorPlane | None:
        """The depth detector's floor plane: None without a depth detector or before it found one.

        The depth detector updates it only on the frames it runs on (colour unusable).
        """
        return getattr(self.detectors["depth"], "floor", None)

    def reset(self) -> None:
        """Forgets the light state (the next frame decides afresh, without hysteresis)."""
        self.colour_ok: bool | None = None
        self.last_used: str | None = None
        self.last_light: tuple[float, float] | None = None

    def colour_usable(self, frame: Frame) -> bool:
        """Whether colour is usable in ``frame``, updating the hysteresis state."""
        if frame.rgb is None:
            self.last_light = None
            return False
        c = self.config
        luma, noise = light_level(frame.rgb, c.stride)
        self.last_light = (luma, noise)
        margin, noise_margin = (c.hysteresis, c.noise_hysteresis) if self.colour_ok is False else (0.0, 0.0)
        ok = luma >= c.dark_threshold + margin
        if c.noise_threshold is not None:
            ok = ok and noise <= c.noise_threshold - noise_margin
        self.colour_ok = ok
        return ok

    def choose(self, frame: Frame) -> str | None:
        """Which detector the rule picks for ``frame`` (updates the hysteresis state)."""
        colour, ir, depth = self.detectors["colour"], self.detectors["ir"], self.detectors["depth"]
        if self.colour_usable(frame) and colour is not None:
            return "colour"
        if ir is not None and getattr(frame, Modality(getattr(ir, "modality", Modality.IR)).value) is not None:
            return "ir"
        if depth is not None and frame.depth is not None:
            return "depth"
        if colour is not None and frame.rgb is not None:
            return "colour"
        return None

    def detect(self, frame: Frame) -> Detections:
        """People in ``frame`` from the detector the rule picks; none if no detector fits the frame."""
        self.last_used = self.choose(frame)
        if self.last_used is None:
            return Detections.empty(Modality.RGB, frame.index)
        return self.detectors[self.last_used].detect(frame)


__all__ = ["AutoDetector", "SwitchConfig", "light_level"]
