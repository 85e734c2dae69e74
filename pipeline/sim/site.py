"""A simulated multi-camera site: several cameras in connected rooms, one population, one schedule, one clock.

Every person of the site (a global identity: their population index, the same in
every camera) follows an itinerary of *visits*: they walk into a room from out of
its camera's view, through one or two waypoints in view (pausing at some), and out
again; then they spend the transit time of a link (``links[].transit_s``) before
entering a linked room, or, with ``people.away_prob``, leave the site for
``people.away_s`` seconds and come back to any room. The itinerary of each person
is drawn from its own random stream and extended lazily, so every camera sees the
same schedule however far or in whichever order the cameras are run (from several
threads too). Each camera is a :class:`SiteCameraWorld` (a :class:`SimWorld` whose
people come from the schedule) wrapped in an ordinary :class:`SimSource`; its
frames carry the camera id, their own indices from 0 and the site clock
(``index / fps`` seconds since the site started), so timestamps compare across cameras.

``reid-synth site`` records a site: one recording per camera plus ``site.json``
(:func:`record_site`, :func:`read_site_manifest`; see ``docs/recording-format.md``).
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from reidstream.pipeline.sim.config import SiteCameraConfig, SimSiteConfig
from reidstream.pipeline.sim.population import Population
from reidstream.pipeline.sim.render import Renderer
from reidstream.pipeline.sim.scene import CameraRig
from reidstream.pipeline.sim.world import SimWorld, _Walker
from reidstream.pipeline.sources.sim import SimSource
from reidstream.pipeline.types import Modality

SITE_FILE = "site.json"
SITE_FORMAT = "reid-stream-site"
SITE_VERSION = 1
_CHUNK_S = 30.0  # the schedule is planned this far ahead of the camera that asks
_MAX_VISIT_S = 600.0


@dataclass(frozen=True, eq=False)
class Visit:
    """A person's walk through one camera's room.

    Attributes:
        person: Global identity (population index).
        camera: Camera id of the room.
        start_index: Camera frame at which the walk starts (out of view).
        states: ``n x 5`` float array per frame from ``start_index``: feet ``x, z``, heading, gait phase, stride.
        fps: The camera's frame rate.
    """

    person: int
    camera: str
    start_index: int
    states: np.ndarray
    fps: float

    @property
    def enter(self) -> float:
        """Site time (s) the person enters the room."""
        return self.start_index / self.fps

    @property
    def leave(self) -> float:
        """Site time (s) the person has left the room."""
        return (self.start_index + len(self.states)) / self.fps


class SiteCameraWorld(SimWorld):
    """One camera of a site: renders the people the site's schedule puts in its room.

    Args:
        renderer: Renders bodies for this camera.
        population: The site's population.
        cfg: This camera's config (walk, lighting, fps).
        camera_id: Its id.
        plan: The site's shared schedule (set by :class:`SitePlan`).
        seed: Seed of the sensor noise.
    """

    def __init__(self, renderer: Renderer, population: Population, cfg: SiteCameraConfig, camera_id: str,
                 seed: int = 0) -> None:
        w = cfg.walk
        super().__init__(renderer, population, people=0, min_distance=w.min_distance, max_distance=w.max_distance,
                         pause_prob=w.pause_prob, lighting=cfg.light_level(), fps=cfg.camera.fps,
                         camera_id=camera_id, seed=seed)
        self.light = cfg.light
        self.plan: SitePlan | None = None
        self._visits: list[Visit] = []  # started and not finished
        self._taken = 0  # visits of this camera taken from the plan so far

    def plan_walk(self, identity: int, rng: np.random.Generator) -> np.ndarray:
        """Walks ``identity`` from out of view, through 1-2 waypoints, out of view: ``n x 5`` states per frame."""
        self.rng = rng  # SimWorld's path and pause draws use self.rng; a site world draws nothing else from it
        person = self.population[identity]
        path = [self._outside()] + [self._in_view() for _ in range(1 + int(rng.random() < 0.5))] + [self._outside()]
        w = _Walker(identity, path, person.speed, 0.8 * person.height, pos=path[0].copy(), phase=float(rng.random()))
        states, dt = [], 1.0 / self.fps
        while True:
            states.append((w.pos[0], w.pos[1], w.heading, w.phase, w.stride))
            if not self._advance(w, dt):
                return np.array(states, np.float64)
            if len(states) * dt > _MAX_VISIT_S:
                raise RuntimeError(f"camera {self.camera_id}: a walk took over {_MAX_VISIT_S} s")

    def _outside(self) -> np.ndarray:
        """A place out of view: the door in the back wall, under/behind the camera, or off to a side."""
        room = self.renderer.room
        u = self.rng.random()
        z_side = min(self.max_distance, room.depth - 0.5, (room.width / 2 - 1.0) / self._tan_h)
        if u < 0.25:
            return np.array([float(np.clip(-1.2, -room.width / 2 + 0.4, room.width / 2 - 0.4)), room.depth - 0.3])
        if u < 0.5 or z_side <= self.min_distance:
            return np.array([self.rng.uniform(-1, 1) * max(room.width / 2 - 0.6, 0.1), -0.6])
        z = self.rng.uniform(self.min_distance, z_side)
        side = 1.0 if self.rng.random() < 0.5 else -1.0
        return np.array([side * min(z * self._tan_h + 0.8, room.width / 2 - 0.3), z])

    def _place(self) -> None:
        """Sets :attr:`walkers` to the scheduled people at the current frame."""
        if self.plan is None:
            raise RuntimeError(f"camera {self.camera_id}: not part of a SitePlan")
        new = self.plan.visits_starting(self.camera_id, self.time, self._taken)
        self._taken += len(new)
        self._visits.extend(new)
        self._visits = [v for v in self._visits if self.index < v.start_index + len(v.states)]
        self.walkers = []
        for v in self._visits:
            k = self.index - v.start_index
            if k >= 0:
                x, z, heading, phase, stride = v.states[k]
                self.walkers.append(_Walker(v.person, [], 0.0, 1.0, pos=np.array([x, z]), heading=float(heading),
                                            phase=float(phase), stride=float(stride)))

    def advance(self) -> None:
        """Moves to the next frame: the people are where the schedule puts them then."""
        self.index += 1
        self._place()


class SitePlan:
    """The shared schedule: each person's visits to the site's cameras, planned lazily and thread-safely.

    Args:
        cfg: The site.
        worlds: Camera id -> its world (their walks are planned in their rooms, at their fps).
    """

    def __init__(self, cfg: SimSiteConfig, worlds: dict[str, SiteCameraWorld]) -> None:
        self.cfg, self.worlds = cfg, worlds
        p = cfg.people
        pick = np.random.default_rng([cfg.seed, 0x5173])
        self.people = sorted(int(i) for i in pick.choice(p.population, p.count, replace=False))
        self.links: dict[str, list[tuple[str, tuple[float, float]]]] = {c: [] for c in cfg.cameras}
        for link in cfg.links:
            a, b = link.between
            self.links[a].append((b, link.transit_s))
            self.links[b].append((a, link.transit_s))
        self._rng = {i: np.random.default_rng([cfg.seed, 0x5174, i]) for i in self.people}
        cams = list(cfg.cameras)
        self._next = {i: (cams[int(self._rng[i].integers(len(cams)))], float(self._rng[i].uniform(0, p.start_spread_s)))
                      for i in self.people}  # person -> (camera, time) of their next, unplanned visit
        self._count = {i: 0 for i in self.people}
        self.visits: dict[str, list[Visit]] = {c: [] for c in cfg.cameras}
        self.horizon = -1.0
        self._lock = threading.Lock()
        for w in worlds.values():
            w.plan = self

    def _extend(self, horizon: float) -> None:
        for i in self.people:
            rng = self._rng[i]
            while self._next[i][1] <= horizon:
                cam, t = self._next[i]
                world = self.worlds[cam]
                states = world.plan_walk(i, np.random.default_rng([self.cfg.seed, 0x5175, i, self._count[i]]))
                visit = Visit(i, cam, math.ceil(t * world.fps - 1e-9), states, world.fps)
                self.visits[cam].append(visit)
                self._count[i] += 1
                p = self.cfg.people
                if rng.random() < p.away_prob:
                    cams = list(self.cfg.cameras)
                    nxt, (lo, hi) = cams[int(rng.integers(len(cams)))], p.away_s
                else:
                    nxt, (lo, hi) = self.links[cam][int(rng.integers(len(self.links[cam])))]
                self._next[i] = (nxt, visit.leave + float(rng.uniform(lo, hi)))
        for vs in self.visits.values():
            vs.sort(key=lambda v: (v.start_index, v.person))  # new visits all start after the old horizon
        self.horizon = horizon

    def visits_starting(self, camera: str, t: float, skip: int = 0) -> list[Visit]:
        """Visits of ``camera`` that start by time ``t`` (s), after the first ``skip`` of them."""
        with self._lock:
            if t + 1.0 > self.horizon:
                self._extend(t + _CHUNK_S)
            out = []
            for v in self.visits[camera][skip:]:
                if v.enter > t + 1e-9:
                    break
                out.append(v)
            return out

    def schedule(self, until: float) -> list[Visit]:
        """Every visit that starts before ``until`` seconds, in start time order."""
        with self._lock:
            if until > self.horizon:
                self._extend(until)
            return sorted((v for vs in self.visits.values() for v in vs if v.enter < until),
                          key=lambda v: (v.enter, v.camera, v.person))


class Site:
    """A simulated site built from a :class:`SimSiteConfig`: one world per camera and their shared schedule.

    Args:
        cfg: The site config.
    """

    def __init__(self, cfg: SimSiteConfig) -> None:
        self.cfg = cfg
        population = Population(cfg.people.population, cfg.people.population_seed)
        self.worlds: dict[str, SiteCameraWorld] = {}
        for n, (cid, cam) in enumerate(cfg.cameras.items()):
            rig = CameraRig(cam.camera.intrinsics(), cam.camera.mount_height, cam.camera.tilt_deg)
            renderer = Renderer(rig, cam.room, cam.sensors, [Modality(m) for m in cam.streams()])
            self.worlds[cid] = SiteCameraWorld(renderer, population, cam, cid, seed=cfg.seed * 1000 + n)
        self.plan = SitePlan(cfg, self.worlds)
        for w in self.worlds.values():
            w._place()

    def frames(self, camera: str) -> int:
        """Frames of ``camera`` in ``duration_s``."""
        return int(round(self.cfg.duration_s * self.cfg.cameras[camera].camera.fps))

    def sources(self, max_frames: int | None = None, realtime: bool = False) -> dict[str, SimSource]:
        """Camera id -> a :class:`SimSource` over its world (``max_frames``: None = run until closed)."""
        return {cid: SimSource(w, max_frames, realtime) for cid, w in self.worlds.items()}



@dataclass(frozen=True)
class SiteCamera:
    """One camera of a recorded site (an entry of ``site.json``'s ``cameras``).

    Attributes:
        camera_id: The camera's id (``Frame.camera_id``).
        path: Its recording directory (absolute once read by :func:`read_site_manifest`).
        modalities: Its streams, e.g. ``("ir", "depth")``.
        light: ``"lit"``, ``"dark"`` or None (unknown).
        fps: Nominal frame rate, or None.
        frames: Frames recorded, or None.
    """

    camera_id: str
    path: Path
    modalities: tuple[str, ...]
    light: str | None = None
    fps: float | None = None
    frames: int | None = None


@dataclass(frozen=True)
class SiteManifest:
    """A recorded site (``site.json``): its cameras and, for a simulated one, links and ground-truth schedule."""

    root: Path
    cameras: tuple[SiteCamera, ...]
    links: tuple[dict, ...] = ()
    people: tuple[int, ...] = ()
    visits: tuple[dict, ...] = ()


def read_site_manifest(path: str | os.PathLike) -> SiteManifest:
    """Reads ``DIR/site.json`` (``path``: the directory or the file); camera paths resolved against DIR.

    Raises:
        FileNotFoundError: no ``site.json``, or a camera's recording (its ``recording.json``) is missing.
        ValueError: naming the file and key, for a malformed file, unknown format or version, duplicate ids.
    """
    from reidstream.pipeline.recording import META_FILE

    path = Path(path)
    file = path if path.suffix == ".json" else path / SITE_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file}: not found; record a site with reid-synth site CONFIG --out DIR")
    try:
        d = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{file}: not valid JSON ({e})") from None
    if not isinstance(d, dict) or d.get("format") != SITE_FORMAT:
        raise ValueError(f"{file}: key 'format': expected '{SITE_FORMAT}', got {d.get('format') if isinstance(d, dict) else d!r}")
    if d.get("version") != SITE_VERSION:
        raise ValueError(f"{file}: key 'version': expected {SITE_VERSION}, got {d.get('version')!r}")
    if not isinstance(d.get("cameras"), list) or not d["cameras"]:
        raise ValueError(f"{file}: key 'cameras': expected a non-empty list of cameras")
    cams, root = [], file.parent
    for i, c in enumerate(d["cameras"]):
        where = f"{file}: key 'cameras.{i}"
        if not isinstance(c, dict):
            raise ValueError(f"{where}': expected an object, got {c!r}")
        for key in ("id", "dir"):
            if not isinstance(c.get(key), str) or not c[key]:
                raise ValueError(f"{where}.{key}': expected a non-empty string, got {c.get(key)!r}")
        if Path(c["dir"]).is_absolute() or ".." in Path(c["dir"]).parts:
            raise ValueError(f"{where}.dir': expected a sub-directory of {root}, got {c['dir']!r}")
        mods = c.get("modalities")
        if not isinstance(mods, list) or not mods or any(m not in {x.value for x in Modality} for m in mods):
            raise ValueError(f"{where}.modalities': expected a list of rgb/depth/ir/thermal, got {mods!r}")
        if c.get("light") not in ("lit", "dark", None):
            raise ValueError(f"{where}.light': expected 'lit', 'dark' or null, got {c.get('light')!r}")
        rec = root / c["dir"]
        if not (rec / META_FILE).is_file():
            raise FileNotFoundError(f"{where}.dir': {rec / META_FILE} not found (camera {c['id']!r})")
        cams.append(SiteCamera(c["id"], rec, tuple(mods), c.get("light"), c.get("fps"), c.get("frames")))
    ids = [c.camera_id for c in cams]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{file}: key 'cameras': camera ids must be unique, got {ids}")
    return SiteManifest(root, tuple(cams), tuple(d.get("links", ())), tuple(d.get("people", ())),
                        tuple(d.get("visits", ())))


def record_site(cfg: SimSiteConfig, out: str | os.PathLike, *, overwrite: bool = False, description: str = "",
                progress: Callable[[str, int, int], None] | None = None) -> SiteManifest:
    """Records every camera of a simulated site into ``out/<camera_id>/`` and writes ``out/site.json`` last.

    Args:
        cfg: The site.
        out: Output directory.
        overwrite: Replace an existing site recording (each camera's recording is swapped in when complete).
        description: Stored as ``source`` in ``site.json`` and each ``recording.json``.
        progress: Called with (camera id, frames written, frames to write).

    Raises:
        FileExistsError: ``out`` holds a site or camera recording (and not ``overwrite``), or other files.
    """
    from reidstream.pipeline.atomic import atomic_write_text
    from reidstream.pipeline.recording import check_target, read_meta, record

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a directory")
    if (out / SITE_FILE).exists() and not overwrite:
        raise FileExistsError(f"{out / SITE_FILE}: a site recording already exists; pass --overwrite to replace it")
    for cid in cfg.cameras:
        check_target(out / cid, overwrite, delete=False)
    extra = [p.name for p in out.iterdir() if p.name not in (*cfg.cameras, SITE_FILE)] if out.is_dir() else []
    if extra:
        raise FileExistsError(f"{out}: holds {sorted(extra)[:5]}, not a site recording; refusing to write there")
    site = Site(cfg)
    entries = []
    for cid, source in site.sources().items():
        total = site.frames(cid)
        n = record(source, out / cid, max_frames=total, overwrite=overwrite,
                   progress=None if progress is None else (lambda k, c=cid, t=total: progress(c, k, t)),
                   description=f"{description} camera {cid}".strip())
        cam = cfg.cameras[cid]
        mods = [m.value for m in read_meta(out / cid).modalities]  # in the recording's order: rgb, depth, ir, thermal
        entries.append({"id": cid, "dir": cid, "modalities": mods, "light": cam.light,
                        "fps": cam.camera.fps, "frames": n})
    visits = [{"person": v.person, "camera": v.camera, "enter": round(v.enter, 4), "leave": round(v.leave, 4)}
              for v in site.plan.schedule(cfg.duration_s)]
    manifest = {"format": SITE_FORMAT, "version": SITE_VERSION, "clock": "site", "cameras": entries,
                "links": [{"between": list(k.between), "transit_s": list(k.transit_s)} for k in cfg.links],
                "people": site.plan.people, "visits": visits, "source": description,
                "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "config": cfg.to_dict()}
    atomic_write_text(out / SITE_FILE, json.dumps(manifest, indent=1) + "\n")
    return read_site_manifest(out)


__all__ = ["SITE_FILE", "SITE_FORMAT", "SITE_VERSION", "Site", "SiteCamera", "SiteCameraWorld", "SiteManifest",
           "SitePlan", "Visit", "read_site_manifest", "record_site"]
