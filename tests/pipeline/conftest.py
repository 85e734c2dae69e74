"""Shared fixtures of the pipeline tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest

from reidstream.pipeline.config import config_from_mapping
from reidstream.pipeline.recording import record
from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.sources.sim import SimSource

REPO = Path(__file__).resolve().parents[2]
SITE_SECONDS = 24
"""Length of :func:`small_site` (15 frames/s per camera)."""
REDIS = shutil.which("redis-server")
"""The OS package's redis-server (None: not installed; the Redis tests are skipped)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server without persistence on a loopback port; :meth:`stop` / :meth:`start` keep the port."""

    def __init__(self, port: int | None = None) -> None:
        self.port, self.proc = port or free_port(), None

    def start(self) -> None:
        self.proc = subprocess.Popen([REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


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


@pytest.fixture(scope="session")
def small_site(tmp_path_factory) -> Path:
    """The simulated two-room site (lit RGB-D room, dark IR + depth corridor, 4 people) recorded by
    ``reid-synth site`` at 320 x 240 for :data:`SITE_SECONDS` s."""
    out = tmp_path_factory.mktemp("site") / "two-rooms"
    size = [f"cameras.{c}.camera.{k}={v}" for c in ("room", "corridor") for k, v in (("width", 320), ("height", 240))]
    subprocess.run([shutil.which("reid-synth"), "site", str(REPO / "configs/sim/site-two-rooms.yaml"), "--out",
                    str(out), f"duration_s={SITE_SECONDS}", *size], check=True, capture_output=True, timeout=300)
    return out
