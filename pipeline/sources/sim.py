"""The simulated RGB-D/IR/thermal camera as a :class:`~reidstream.pipeline.sources.base.Source`."""

from __future__ import annotations

import time
from typing import Iterator

from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.sim.world import SimWorld
from reidstream.pipeline.sources.base import AnnotatedFrame
from reidstream.pipeline.types import Modality


class SimSource:
    """Frames of a :class:`SimWorld`, with ground truth.

    Args:
        world: The simulated world (its camera, people, lighting).
        max_frames: Stop after this many frames (None: run until closed).
        realtime: Pace frames at the camera's fps, as a live camera would deliver them.
    """

    def __init__(self, world: SimWorld, max_frames: int | None = None, realtime: bool = False) -> None:
        if max_frames is not None and max_frames < 0:
            raise ValueError(f"SimSource.max_frames: expected >= 0 or None, got {max_frames}")
        self.world, self.max_frames, self.realtime = world, max_frames, realtime
        self.camera_id = world.camera_id
        self.fps = world.fps
        self.modalities = tuple(m for m in Modality if m in world.renderer.modalities)
        self._closed = False

    @classmethod
    def from_config(cls, cfg: SimConfig, max_frames: int | None = None, realtime: bool = False) -> "SimSource":
        """A source over a new world built from ``cfg``."""
        return cls(SimWorld.from_config(cfg), max_frames, realtime)

    def __iter__(self) -> Iterator[AnnotatedFrame]:
        start = time.monotonic()
        produced = 0
        while not self._closed and (self.max_frames is None or produced < self.max_frames):
            item = self.world.step()
            produced += 1
            if self.realtime:
                delay = start + item.frame.timestamp - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield item

    def close(self) -> None:
        """Stops iteration (idempotent)."""
        self._closed = True

    def __enter__(self) -> "SimSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
