"""Shared fixtures of the pipeline tests."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.recording import record
from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.sources.sim import SimSource


@pytest.fixture(scope="module")
def make_sim_recording(tmp_path_factory) -> Callable[..., Path]:
    """``make(frames, seed, people)``: a recording of the simulated camera (colour + depth, ground truth)."""

    def make(frames: int, seed: int, people: int) -> Path:
        cfg = config_from_mapping(SimConfig, {"seed": seed, "modalities": ["rgb", "depth"],
                                              "crowd": {"people": people}}, "<test>")
        path = tmp_path_factory.mktemp("rec") / "sim"
        record(SimSource.from_config(cfg, max_frames=frames), path, max_frames=frames)
        return path

    return make
