"""Configuration of the simulated camera world (``configs/sim/*.yaml``)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from reidstream.pipeline.config import ConfigModel
from reidstream.pipeline.types import Intrinsics

ModalityName = Literal["rgb", "depth", "ir", "thermal"]


class CameraConfig(ConfigModel):
    """Pinhole camera and its mounting. Focal lengths default to a RealSense D435 colour stream."""

    camera_id: str = "sim0"
    width: int = Field(640, ge=32, le=4096)
    height: int = Field(480, ge=32, le=4096)
    fx: float | None = Field(None, gt=0)
    fy: float | None = Field(None, gt=0)
    cx: float | None = None
    cy: float | None = None
    mount_height: float = Field(2.2, ge=0.2, le=10.0)
    tilt_deg: float = Field(12.0, ge=-30.0, le=80.0)
    fps: float = Field(30.0, gt=0, le=240)

    def intrinsics(self) -> Intrinsics:
        """Intrinsics at this resolution (D435 focal lengths scaled, unless given)."""
        d = Intrinsics.realsense_d435(self.width, self.height)
        return Intrinsics(self.width, self.height, self.fx or d.fx, self.fy or d.fy,
                          d.cx if self.cx is None else self.cx, d.cy if self.cy is None else self.cy)


class RoomConfig(ConfigModel):
    """Box room in front of the camera (metres, deg C)."""

    width: float = Field(9.0, gt=1.0)
    depth: float = Field(8.5, gt=1.0)
    height: float = Field(3.0, gt=1.5)
    air_temp: float = Field(21.0, ge=-30.0, le=45.0)


class SensorConfig(ConfigModel):
    """Sensor models: colour noise and gain, active-stereo depth, IR projector, thermal."""

    exposure: float = Field(1.4, gt=0)
    shot_noise: float = Field(0.002, ge=0)
    read_noise: float = Field(0.004, ge=0)
    max_gain: float = Field(16.0, ge=1)
    depth_min: float = Field(0.3, gt=0)
    depth_max: float = Field(10.0, gt=0)
    baseline: float = Field(0.05, gt=0)
    subpixel: float = Field(0.08, ge=0)
    depth_signal_min: float = Field(0.12, ge=0)
    passive_texture: float = Field(0.5, ge=0)
    projector_power: float = Field(2.0, ge=0)
    ir_projector: float = Field(4.0, ge=0)
    emitter: bool = True
    dot_contrast: float = Field(0.3, ge=0, le=1)
    ambient_ir: float = Field(0.3, ge=0)
    ir_gain: float = Field(1.0, gt=0)
    ir_noise: float = Field(0.01, ge=0)
    netd: float = Field(0.05, ge=0)
    thermal_blur: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _range(self) -> "SensorConfig":
        if self.depth_max <= self.depth_min:
            raise ValueError(f"depth_max ({self.depth_max}) must exceed depth_min ({self.depth_min})")
        return self


class LightingConfig(ConfigModel):
    """Scene illumination: 1 = bright office, 0.02 = near dark; optionally cycling."""

    level: float = Field(1.0, gt=0, le=2.0)
    min_level: float = Field(0.02, gt=0, le=2.0)
    period_s: float = Field(0.0, ge=0)

    def at(self, t: float) -> float:
        """Illumination at time ``t`` seconds (cosine between level and min_level if period_s > 0)."""
        if self.period_s <= 0:
            return self.level
        w = 0.5 + 0.5 * math.cos(2 * math.pi * t / self.period_s)
        return self.min_level + (self.level - self.min_level) * w


class CrowdConfig(ConfigModel):
    """Who walks through the room and how."""

    people: int = Field(4, ge=0, le=32)
    population: int = Field(500, ge=1, le=1_000_000)
    population_seed: int = 0
    return_prob: float = Field(0.4, ge=0, le=1)
    min_distance: float = Field(1.0, gt=0.3)
    max_distance: float = Field(8.0, gt=0.5)
    pause_prob: float = Field(0.2, ge=0, le=1)
    mean_gap_s: float = Field(1.5, ge=0)

    @model_validator(mode="after")
    def _range(self) -> "CrowdConfig":
        if self.max_distance <= self.min_distance:
            raise ValueError(f"max_distance ({self.max_distance}) must exceed min_distance ({self.min_distance})")
        return self


class SimConfig(ConfigModel):
    """The simulated RGB-D/IR/thermal camera world."""

    seed: int = 0
    modalities: list[ModalityName] = Field(default_factory=lambda: ["rgb", "depth", "ir", "thermal"], min_length=1)
    camera: CameraConfig = CameraConfig()
    room: RoomConfig = RoomConfig()
    sensors: SensorConfig = SensorConfig()
    lighting: LightingConfig = LightingConfig()
    crowd: CrowdConfig = CrowdConfig()
