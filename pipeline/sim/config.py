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


# --- Multi-camera simulated site (configs/sim/site-*.yaml, pipeline/sim/site.py) ---------------------------------

SiteLight = Literal["lit", "dark"]
_CAMERA_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class WalkConfig(ConfigModel):
    """How people walk through one site camera's room: waypoints in view, pauses at them."""

    min_distance: float = Field(1.0, gt=0.3)
    max_distance: float = Field(8.0, gt=0.5)
    pause_prob: float = Field(0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _range(self) -> "WalkConfig":
        if self.max_distance <= self.min_distance:
            raise ValueError(f"max_distance ({self.max_distance}) must exceed min_distance ({self.min_distance})")
        return self


class SiteCameraConfig(ConfigModel):
    """One camera of a site and its room; its camera id is its key in :attr:`SimSiteConfig.cameras`.

    ``light`` sets what ``modalities`` and ``lighting`` default to (``null``): ``lit`` -> rgb + depth at
    level 1.0; ``dark`` -> ir + depth at level 0.02. A given ``lighting`` must agree with ``light``
    (lit: level >= 0.2, dark: level <= 0.1) and must not cycle.
    """

    light: SiteLight = "lit"
    modalities: list[ModalityName] | None = Field(None, min_length=1)
    camera: CameraConfig = CameraConfig()
    room: RoomConfig = RoomConfig()
    sensors: SensorConfig = SensorConfig()
    lighting: LightingConfig | None = None
    walk: WalkConfig = WalkConfig()

    @model_validator(mode="after")
    def _light_agrees(self) -> "SiteCameraConfig":
        if self.lighting is None:
            return self
        if self.lighting.period_s > 0:
            raise ValueError("lighting.period_s: a site camera's light is fixed (lit or dark); expected 0")
        level = self.lighting.level
        if (self.light == "lit" and level < 0.2) or (self.light == "dark" and level > 0.1):
            raise ValueError(f"lighting.level {level} does not fit light '{self.light}' "
                             f"(expected >= 0.2 for lit, <= 0.1 for dark)")
        return self

    def streams(self) -> list[str]:
        """The modalities, or the default of ``light``."""
        return list(self.modalities or (["rgb", "depth"] if self.light == "lit" else ["ir", "depth"]))

    def light_level(self) -> LightingConfig:
        """The lighting, or the default of ``light``."""
        return self.lighting or LightingConfig(level=1.0 if self.light == "lit" else 0.02)


class SiteLinkConfig(ConfigModel):
    """Two connected rooms and the time (s) a person takes between leaving one and entering the other."""

    between: tuple[str, str]
    transit_s: tuple[float, float] = (3.0, 8.0)

    @model_validator(mode="after")
    def _check(self) -> "SiteLinkConfig":
        if self.between[0] == self.between[1]:
            raise ValueError(f"between: expected two different cameras, got {list(self.between)}")
        lo, hi = self.transit_s
        if not 0 <= lo <= hi:
            raise ValueError(f"transit_s: expected [min, max] with 0 <= min <= max, got {list(self.transit_s)}")
        return self


class SitePeopleConfig(ConfigModel):
    """Who walks around the site: ``count`` people drawn from the population, arriving over ``start_spread_s``;
    after a visit a person goes to a linked room, or with ``away_prob`` leaves the site for ``away_s`` seconds and
    comes back to any room (the same one included)."""

    count: int = Field(4, ge=1, le=32)
    population: int = Field(500, ge=1, le=1_000_000)
    population_seed: int = 0
    start_spread_s: float = Field(5.0, ge=0)
    away_prob: float = Field(0.1, ge=0, le=1)
    away_s: tuple[float, float] = (10.0, 30.0)

    @model_validator(mode="after")
    def _check(self) -> "SitePeopleConfig":
        if self.count > self.population:
            raise ValueError(f"count ({self.count}) exceeds population ({self.population})")
        if not 0 <= self.away_s[0] <= self.away_s[1]:
            raise ValueError(f"away_s: expected [min, max] with 0 <= min <= max, got {list(self.away_s)}")
        return self


class SimSiteConfig(ConfigModel):
    """A simulated multi-camera site: cameras (keyed by camera id) in connected rooms, one shared population
    and schedule, one clock (timestamps are seconds since the site started, in every camera).
    ``duration_s`` is what ``reid-synth site`` records (``duration_s * camera.fps`` frames per camera)."""

    seed: int = 0
    duration_s: float = Field(60.0, gt=0)
    people: SitePeopleConfig = SitePeopleConfig()
    cameras: dict[str, SiteCameraConfig] = Field(min_length=2)
    links: list[SiteLinkConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> "SimSiteConfig":
        import re

        bad = [k for k in self.cameras if not re.match(_CAMERA_ID, k)]
        for key, cam in self.cameras.items():
            if cam.camera.camera_id not in ("sim0", key):
                raise ValueError(f"cameras.{key}.camera.camera_id: the camera id is the key '{key}'; expected "
                                 f"it or nothing, got {cam.camera.camera_id!r}")
        if bad:
            raise ValueError(f"cameras: camera ids name sub-directories; expected letters, digits, '_', '.', '-' "
                             f"(not starting with '.' or '-'), got {bad}")
        pairs = set()
        for i, link in enumerate(self.links):
            unknown = [c for c in link.between if c not in self.cameras]
            if unknown:
                raise ValueError(f"links.{i}.between: unknown camera(s) {unknown}; expected some of "
                                 f"{list(self.cameras)}")
            pair = frozenset(link.between)
            if pair in pairs:
                raise ValueError(f"links.{i}: {sorted(pair)} are linked twice")
            pairs.add(pair)
        alone = [c for c in self.cameras if not any(c in link.between for link in self.links)]
        if alone:
            raise ValueError(f"links: camera(s) {alone} are linked to no other camera")
        return self
