"""The simulated world over time: people entering, walking (and pausing) through the room, leaving.

People walk from outside the camera's field of view (or the door at the back)
through one or two waypoints at 1-8 m and out again, with a gait cycle
matched to their speed; the paths cross, so people occlude each other. A
person who left may come back later (``return_prob``): that is what a
re-identification system must recognise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from reidstream.pipeline.sim.body import pose_body
from reidstream.pipeline.sim.config import LightingConfig, SimConfig
from reidstream.pipeline.sim.population import Population
from reidstream.pipeline.sim.render import Rendered, Renderer
from reidstream.pipeline.sim.scene import CameraRig
from reidstream.pipeline.sources.base import AnnotatedFrame
from reidstream.pipeline.types import Alignment, DepthUnit, Frame, Modality


@dataclass(frozen=True)
class Placement:
    """A person posed at a given place: world ``(x, z)`` of the feet, heading (0 = away from camera)."""

    identity: int
    x: float
    z: float
    heading: float = math.pi
    phase: float = 0.0
    stride: float = 0.0


@dataclass
class _Walker:
    identity: int
    path: list[np.ndarray]
    speed: float
    cycle: float
    pos: np.ndarray = field(default_factory=lambda: np.zeros(2))
    target: int = 1
    heading: float = math.pi
    phase: float = 0.0
    stride: float = 1.0
    pause: float = 0.0


class SimWorld:
    """People in a room seen by one simulated RGB-D/IR/thermal camera.

    Args:
        renderer: Renders bodies for the camera.
        population: The identities that may appear.
        people: Target number of people present at once.
        return_prob: Probability that a newcomer is someone who was here before.
        min_distance: Nearest waypoint distance from the camera (m).
        max_distance: Farthest waypoint distance (m).
        pause_prob: Probability of standing still for a while at a waypoint.
        mean_gap_s: Mean time between arrivals while below ``people``.
        lighting: Illumination over time.
        fps: Frame rate of the simulated camera.
        camera_id: Id stamped on frames.
        seed: Seed of the motion and of the sensor noise.
        identities: The pool of population indices people are drawn from (default: the whole
            population); it must hold at least ``people`` distinct indices.
    """

    def __init__(self, renderer: Renderer, population: Population, *, people: int = 4, return_prob: float = 0.4,
                 min_distance: float = 1.0, max_distance: float = 8.0, pause_prob: float = 0.2,
                 mean_gap_s: float = 1.5, lighting: LightingConfig = LightingConfig(), fps: float = 30.0,
                 camera_id: str = "sim0", seed: int = 0, identities: Sequence[int] | None = None) -> None:
        self.renderer, self.population = renderer, population
        self.people, self.return_prob, self.pause_prob, self.mean_gap_s = people, return_prob, pause_prob, mean_gap_s
        self.min_distance, self.max_distance = min_distance, max_distance
        self.lighting, self.fps, self.camera_id, self.seed = lighting, fps, camera_id, seed
        self.rng = np.random.default_rng([seed, 0xA11])
        if identities is None:
            self.pool: list[int] | None = None
            self._fresh = iter(self.rng.permutation(len(population)).tolist())
        else:
            pool = list(dict.fromkeys(int(i) for i in identities))
            bad = [i for i in pool if not 0 <= i < len(population)]
            if bad:
                raise ValueError(f"SimWorld.identities: expected indices in 0 .. {len(population) - 1}, got {bad}")
            if len(pool) < people:
                raise ValueError(f"SimWorld.identities: {len(pool)} distinct identities cannot keep "
                                 f"people={people} in the room at once")
            self.pool = pool
            self._fresh = iter([pool[i] for i in self.rng.permutation(len(pool)).tolist()])
        self._left: list[int] = []
        self.walkers: list[_Walker] = []
        self.index = 0
        self._next_arrival = 0.0
        k = renderer.rig.intrinsics
        self._tan_h = (k.width / 2) / k.fx
        for _ in range(people):
            self._spawn(inside=True)

    @classmethod
    def from_config(cls, cfg: SimConfig, *, identities: Sequence[int] | None = None) -> "SimWorld":
        """Builds the world, camera and renderer described by a :class:`SimConfig` (``identities``: as in the
        constructor)."""
        rig = CameraRig(cfg.camera.intrinsics(), cfg.camera.mount_height, cfg.camera.tilt_deg)
        renderer = Renderer(rig, cfg.room, cfg.sensors, [Modality(m) for m in cfg.modalities])
        c = cfg.crowd
        return cls(renderer, Population(c.population, c.population_seed), people=c.people,
                   return_prob=c.return_prob, min_distance=c.min_distance, max_distance=c.max_distance,
                   pause_prob=c.pause_prob, mean_gap_s=c.mean_gap_s, lighting=cfg.lighting, fps=cfg.camera.fps,
                   camera_id=cfg.camera.camera_id, seed=cfg.seed, identities=identities)

    @property
    def time(self) -> float:
        """Simulated time of the next frame, in seconds."""
        return self.index / self.fps

    def _pick_identity(self) -> int:
        present = {w.identity for w in self.walkers}
        back = [i for i in self._left if i not in present]
        if back and self.rng.random() < self.return_prob:
            return int(back[self.rng.integers(len(back))])
        for i in self._fresh:
            if i not in present:
                return int(i)
        pool = [i for i in (range(len(self.population)) if self.pool is None else self.pool) if i not in present]
        return int(pool[self.rng.integers(len(pool))])

    def _in_view(self) -> np.ndarray:
        z = self.rng.uniform(self.min_distance, min(self.max_distance, self.renderer.room.depth - 0.5))
        half = min(z * self._tan_h * 0.85, self.renderer.room.width / 2 - 0.4)
        return np.array([self.rng.uniform(-half, half), z])

    def _outside(self) -> np.ndarray:
        room = self.renderer.room
        if self.rng.random() < 0.2:  # the door in the back wall
            return np.array([-1.2, room.depth - 0.3])
        z = self.rng.uniform(self.min_distance, min(self.max_distance, room.depth - 0.5))
        side = 1.0 if self.rng.random() < 0.5 else -1.0
        return np.array([side * min(z * self._tan_h + 0.7, room.width / 2 - 0.3), z])

    def _spawn(self, inside: bool = False) -> None:
        ident = self._pick_identity()
        person = self.population[ident]
        way = [self._in_view() for _ in range(1 + int(self.rng.random() < 0.5))]
        path = ([] if inside else [self._outside()]) + way + [self._outside()]
        w = _Walker(ident, path, person.speed, 0.8 * person.height, pos=path[0].copy(),
                    phase=float(self.rng.random()))
        self.walkers.append(w)

    def _advance(self, w: _Walker, dt: float) -> bool:
        """Moves a walker by ``dt``; False once it reached the end of its path."""
        if w.pause > 0:
            w.pause -= dt
            w.stride = max(0.0, w.stride - 3 * dt)
            return True
        w.stride = min(1.0, w.stride + 3 * dt)
        step = w.speed * dt * (0.3 + 0.7 * w.stride)
        while step > 0 and w.target < len(w.path):
            delta = w.path[w.target] - w.pos
            dist = float(np.linalg.norm(delta))
            if dist > 1e-9:
                w.heading = math.atan2(delta[0], delta[1])
            if dist > step:
                w.pos = w.pos + delta / dist * step
                w.phase += step / w.cycle
                return True
            w.pos, step = w.path[w.target].copy(), step - dist
            w.phase += dist / w.cycle
            w.target += 1
            if w.target < len(w.path) - 1 and self.rng.random() < self.pause_prob:
                w.pause = float(self.rng.uniform(1.0, 4.0))
                return True
        return w.target < len(w.path)

    def step(self) -> AnnotatedFrame:
        """Renders the current instant, then advances the world by one frame."""
        t = self.time
        bodies = [(w.identity, pose_body(self.population[w.identity], w.pos[0], w.pos[1], w.heading, w.phase,
                                         w.stride)) for w in self.walkers]
        rendered = self.renderer.render(bodies, self.lighting.at(t), np.random.default_rng([self.seed, self.index, 1]))
        frame = self.frame(rendered, self.index, t)
        self.advance()
        return AnnotatedFrame(frame, rendered.annotations, True)

    def advance(self) -> None:
        """Advances the world by one frame without rendering it (people move, leave and arrive as in :meth:`step`)."""
        dt = 1.0 / self.fps
        kept = []
        for w in self.walkers:
            if self._advance(w, dt):
                kept.append(w)
            else:
                self._left.append(w.identity)
        self.walkers = kept
        if len(self.walkers) < self.people and self.time >= self._next_arrival:
            self._spawn()
            self._next_arrival = self.time + float(self.rng.exponential(self.mean_gap_s)) if self.mean_gap_s else 0.0
        self.index += 1

    def render_placements(self, placements: list[Placement], light: float | None = None,
                          noise_seed: int = 0) -> Rendered:
        """Renders people at explicit places (for datasets and tests), outside the world's timeline."""
        bodies = [(p.identity, pose_body(self.population[p.identity], p.x, p.z, p.heading, p.phase, p.stride))
                  for p in placements]
        light = self.lighting.level if light is None else light
        return self.renderer.render(bodies, light, np.random.default_rng([self.seed, noise_seed, 2]))

    def frame(self, rendered: Rendered, index: int, timestamp: float) -> Frame:
        """Wraps rendered images into a validated :class:`Frame`."""
        im = rendered.images
        return Frame(rgb=im.get(Modality.RGB), depth=im.get(Modality.DEPTH), ir=im.get(Modality.IR),
                     thermal=im.get(Modality.THERMAL), intrinsics=self.renderer.rig.intrinsics,
                     timestamp=timestamp, index=index, camera_id=self.camera_id,
                     depth_unit=DepthUnit.MILLIMETRE, alignment=Alignment.ALIGNED_TO_COLOR)
