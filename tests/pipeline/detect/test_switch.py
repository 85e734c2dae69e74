"""The automatic detector choice: colour in the light, IR or depth in the dark, with hysteresis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reidstream.pipeline.config import config_from_mapping, load_config
from reidstream.pipeline.detect import AutoDetector, Detector, SwitchConfig
from reidstream.pipeline.detect.switch import light_level
from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.sim.world import SimWorld
from reidstream.pipeline.types import Detections, Frame, Modality

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "sim"


class Fake:
    """A detector that records the frames it saw and finds one person."""

    def __init__(self, name: str, modality: Modality) -> None:
        self.name, self.modality, self.frames = name, modality, []

    def detect(self, frame: Frame) -> Detections:
        self.frames.append(frame.index)
        return Detections(np.array([[1, 2, 3, 4]], np.float32), np.ones(1, np.float32), None, self.modality,
                          frame.index)


def _detectors():
    return Fake("yolo-rgb", Modality.RGB), Fake("depth-people", Modality.DEPTH), Fake("yolo-ir", Modality.IR)


def _grey(level: float, noise: float = 0.0, index: int = 0, size: tuple[int, int] = (60, 80), **streams) -> Frame:
    rng = np.random.default_rng(index)
    img = np.clip(level + noise * rng.standard_normal(size), 0, 255).astype(np.uint8)
    return Frame(rgb=np.repeat(img[..., None], 3, axis=2), index=index, **streams)


def test_light_level_measures_brightness_and_noise():
    luma, noise = light_level(_grey(120).rgb)
    assert luma == pytest.approx(120, abs=0.5) and noise == pytest.approx(0.0)
    luma, noise = light_level(_grey(120, noise=10.0).rgb, stride=2)
    assert luma == pytest.approx(120, abs=2) and noise == pytest.approx(10.0, rel=0.15)


def test_simulated_light_and_dark():
    colour, depth, _ = _detectors()
    auto = AutoDetector(colour, depth)
    assert isinstance(auto, Detector)
    bright = SimWorld.from_config(load_config(SimConfig, CONFIGS / "default.yaml", ["modalities=[rgb, depth]"]))
    dark = SimWorld.from_config(load_config(SimConfig, CONFIGS / "dark.yaml", ["modalities=[rgb, depth]"]))
    out = auto.detect(bright.step().frame)
    assert auto.last_used == "colour" and out.modality is Modality.RGB and auto.last_light[0] > 100
    out = auto.detect(dark.step().frame)  # auto-gain keeps the mean up, the noise gives it away
    assert auto.last_used == "depth" and out.modality is Modality.DEPTH
    assert colour.frames == [0] and depth.frames == [0]


def test_hysteresis_keeps_the_choice_near_the_threshold():
    colour, depth, _ = _detectors()
    auto = AutoDetector(colour, depth, dark_threshold=50, hysteresis=10, noise_threshold=None)
    frame = lambda level: _grey(level, depth=np.ones((60, 80), np.uint16))  # noqa: E731
    used = []
    for level in [100, 55, 49, 52, 55, 59, 61, 52, 50, 48, 58]:
        auto.detect(frame(level))
        used.append(auto.last_used)
    assert used == ["colour"] * 2 + ["depth"] * 4 + ["colour"] * 3 + ["depth"] * 2
    # The noise test, with its own hysteresis.
    auto = AutoDetector(colour, depth, noise_threshold=20.0, noise_hysteresis=3.0)
    used = []
    for noise in [5, 23, 18.5, 14, 18]:
        auto.detect(_grey(128, noise, size=(480, 640), depth=np.ones((480, 640), np.uint16)))
        used.append(auto.last_used)
    assert used == ["colour", "depth", "depth", "colour", "colour"]


def test_cycling_light_switches_once_each_way(sim_config):
    colour, depth, _ = _detectors()
    auto = AutoDetector(colour, depth, stride=4)
    world = SimWorld.from_config(sim_config(modalities=["rgb", "depth"], camera={"width": 160, "height": 120},
                                            lighting={"period_s": 4.0}, crowd={"people": 1}))
    used = []
    for _ in range(120):  # one light cycle: bright, near dark at 2 s, bright again
        auto.detect(world.step().frame)
        used.append(auto.last_used)
    changes = [i for i in range(1, len(used)) if used[i] != used[i - 1]]
    assert len(changes) == 2 and used[0] == used[-1] == "colour" and used[changes[0]] == "depth"


def test_ir_before_depth_and_frames_without_colour():
    colour, depth, ir = _detectors()
    auto = AutoDetector(colour, depth, ir=ir)
    streams = {"depth": np.ones((60, 80), np.uint16), "ir": np.zeros((60, 80), np.uint8)}
    auto.detect(_grey(10, **streams))
    assert auto.last_used == "ir"
    auto.detect(_grey(10, depth=streams["depth"]))  # no IR image: depth
    assert auto.last_used == "depth"
    auto.detect(Frame(depth=streams["depth"]))  # no colour at all
    assert auto.last_used == "depth" and auto.last_light is None
    auto.detect(_grey(10))  # dark colour and nothing else: colour, better than nothing
    assert auto.last_used == "colour"
    only_depth = AutoDetector(None, depth)
    out = only_depth.detect(Frame(ir=streams["ir"]))
    assert only_depth.last_used is None and len(out) == 0
    with pytest.raises(ValueError, match="at least one"):
        AutoDetector()


def test_config_builds_the_switch():
    colour, depth, ir = _detectors()
    cfg = config_from_mapping(SwitchConfig, {"dark_threshold": 30.0, "noise_threshold": None}, "<test>")
    auto = AutoDetector.from_config(cfg, colour, depth, ir)
    assert auto.config == cfg and auto.detectors == {"colour": colour, "ir": ir, "depth": depth}
    auto.detect(_grey(35, 40.0, depth=np.ones((60, 80), np.uint16)))
    assert auto.last_used == "colour"  # noise not tested
