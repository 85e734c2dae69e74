"""Shared fixtures: small simulated worlds (no camera, no download)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")

from reidstream.pipeline.config import config_from_mapping  # noqa: E402
from reidstream.pipeline.sim.config import SimConfig  # noqa: E402


@pytest.fixture
def sim_config():
    """Builds a SimConfig from nested overrides of the defaults."""

    def make(**sections) -> SimConfig:
        return config_from_mapping(SimConfig, sections, "<test>")

    return make
