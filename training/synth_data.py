"""Labelled crop datasets rendered by the simulated world, written in real datasets' on-disk layouts.

Each layout gets the cameras and sessions its real counterpart has:

* ``biwi``: one RGB-D camera; training people walk (``Training``), test people
  are seen ``Still`` (standing, facing the camera) and ``Walking``;
* ``robotpku``: one RGB-D camera, ``still`` and ``walking`` sequences per person;
* ``sysu``: four colour cameras in lit rooms and two IR cameras (emitter on,
  near-dark room), different mounts; captures are not paired across cameras;
* ``regdb``: a co-located colour + thermal pair, people seen from the ``front`` and ``back``;
* ``openreid``: Hafner et al.'s open-reid copies (colour + ``_depth`` sibling): one
  RGB-D camera, ``still`` and ``walking`` sequences per person (two open-reid cameras),
  like their RobotPKU copy;
* ``folder``: the generic paired folder, two co-located rigs capturing all four
  modalities (camera 0 people walk, camera 1 people stand still).

Identities are drawn from the population by ``seed`` and split into disjoint
train / test sets; crops are cut at the ground-truth box of a fully visible person.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reidstream.pipeline.sim.config import SimConfig
from reidstream.pipeline.sim.preview import crop_box
from reidstream.pipeline.sim.world import Placement, SimWorld
from reidstream.pipeline.viz import thermal_to_uint8
from reidstream.training.data import LAYOUTS, CropCapture


@dataclass(frozen=True)
class _Camera:
    index: int
    mount_height: float
    tilt_deg: float
    light: float
    modalities: tuple[str, ...]
    ir_gain: float = 1.0  # surveillance IR cameras carry their own NIR illuminator


@dataclass(frozen=True)
class _Session:
    name: str
    still: bool
    camera: int
    for_train: bool
    for_test: bool


_RGBD = ("rgb", "depth")
PLANS: dict[str, tuple[tuple[_Camera, ...], tuple[_Session, ...]]] = {
    "biwi": ((_Camera(0, 1.5, 4.0, 0.8, _RGBD),),
             (_Session("Training", False, 0, True, False), _Session("Still", True, 0, False, True),
              _Session("Walking", False, 0, False, True))),
    "robotpku": ((_Camera(0, 1.3, 2.0, 0.7, _RGBD),),
                 (_Session("still", True, 0, True, True), _Session("walking", False, 0, True, True))),
    "sysu": ((_Camera(0, 2.0, 10.0, 1.0, ("rgb",)), _Camera(1, 1.6, 5.0, 0.6, ("rgb",)),
              _Camera(2, 2.4, 14.0, 0.8, ("rgb",)), _Camera(3, 1.8, 8.0, 0.4, ("rgb",)),
              _Camera(4, 2.2, 12.0, 0.03, ("ir",), ir_gain=5.0), _Camera(5, 1.7, 6.0, 0.05, ("ir",), ir_gain=4.0)),
             tuple(_Session(f"cam{i}", i % 2 == 1, i, True, True) for i in range(6))),
    "regdb": ((_Camera(0, 1.6, 4.0, 0.7, ("rgb", "thermal")),),
              (_Session("front", False, 0, True, True), _Session("back", False, 0, True, True))),
    "openreid": ((_Camera(0, 1.3, 2.0, 0.7, _RGBD),),
                 (_Session("still", True, 0, True, True), _Session("walking", False, 0, True, True))),
    "folder": ((_Camera(0, 1.6, 5.0, 0.8, ("rgb", "depth", "ir", "thermal")),
                _Camera(1, 2.0, 10.0, 0.6, ("rgb", "depth", "ir", "thermal"))),
               (_Session("walking", False, 0, True, True), _Session("still", True, 1, True, True))),
}


def _world(cfg: SimConfig, cam: _Camera) -> SimWorld:
    cfg = cfg.model_copy(update={
        "modalities": list(cam.modalities),
        "camera": cfg.camera.model_copy(update={"mount_height": cam.mount_height, "tilt_deg": cam.tilt_deg}),
        "crowd": cfg.crowd.model_copy(update={"people": 0}),
        "sensors": cfg.sensors.model_copy(update={"ir_gain": cam.ir_gain,
                                                  "dot_contrast": 0.0 if cam.ir_gain > 1 else cfg.sensors.dot_contrast}),
    })
    return SimWorld.from_config(cfg)


def _capture(world: SimWorld, cam: _Camera, session: _Session, identity: int, frame: int,
             rng: np.random.Generator) -> CropCapture | None:
    tan_h = (world.renderer.rig.intrinsics.width / 2) / world.renderer.rig.intrinsics.fx
    z = rng.uniform(4.0, 6.5)
    x = rng.uniform(-0.5, 0.5) * z * tan_h
    if session.still:
        heading, stride = math.pi + rng.uniform(-0.5, 0.5), 0.0
    elif session.name == "back":
        heading, stride = rng.uniform(-0.4, 0.4), 1.0
    elif session.name == "front":
        heading, stride = math.pi + rng.uniform(-0.4, 0.4), 1.0
    else:
        heading, stride = rng.uniform(-math.pi, math.pi), 1.0
    r = world.render_placements([Placement(identity, x, z, heading, float(rng.random()), stride)],
                                light=cam.light * rng.uniform(0.7, 1.3), noise_seed=int(rng.integers(2**31)))
    if not r.annotations or r.annotations[0].visible < 0.9:
        return None
    k = world.renderer.rig.intrinsics
    x0, y0, x1, y1 = crop_box(r.annotations[0].box, k.width, k.height)
    crop = {m.value: img[y0:y1, x0:x1].copy() for m, img in r.images.items()}
    if "thermal" in crop:
        crop["thermal"] = thermal_to_uint8(crop["thermal"])
    mask = ((r.labels[y0:y1, x0:x1] == 0) * 255).astype(np.uint8) if "depth" in crop else None
    return CropCapture(identity, cam.index, session.name, frame, mask=mask, **crop)


def write_dataset(layout: str, out: str | Path, cfg: SimConfig, *, identities: int = 40,
                  train_fraction: float = 0.5, images_per_camera: int = 8, overwrite: bool = False,
                  seed: int = 0, progress: bool = True) -> dict[str, int]:
    """Renders and writes a labelled crop dataset in ``layout``'s on-disk format.

    Args:
        layout: ``biwi``, ``robotpku``, ``sysu``, ``regdb``, ``openreid`` or ``folder``
            (``openreid`` also writes the depth copy ``<out>_depth``).
        out: Dataset root (must be empty unless ``overwrite``).
        cfg: World config (room, sensors, population); crowd and camera mount are set per layout.
        identities: Number of people; at least 2.
        train_fraction: Share of people in the training split (the rest are test).
        images_per_camera: Captures per person per session.
        overwrite: Replace the contents of ``out``.
        seed: Seed of identity choice, split and poses.
        progress: Print progress to stderr.

    Returns:
        Image counts per split, as read back from disk.
    """
    if layout not in PLANS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(PLANS)}")
    if identities < 2 or identities > cfg.crowd.population:
        raise ValueError(f"identities: expected 2 .. {cfg.crowd.population} (crowd.population), got {identities}")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction: expected a value in (0, 1), got {train_fraction}")
    rng = np.random.default_rng([seed, 0xDA7A])
    ids = sorted(int(i) for i in rng.choice(cfg.crowd.population, identities, replace=False))
    order = rng.permutation(identities)
    n_train = min(max(1, round(identities * train_fraction)), identities - 1)
    train = sorted(ids[i] for i in order[:n_train])
    test = sorted(ids[i] for i in order[n_train:])
    cameras, sessions = PLANS[layout]
    worlds = {c.index: _world(cfg, c) for c in cameras}
    captures: list[CropCapture] = []
    total = len(ids)
    for done, identity in enumerate(ids, 1):
        is_train = identity in train
        for s in sessions:
            if not (s.for_train if is_train else s.for_test):
                continue
            cam = cameras[s.camera]
            n, tries = 0, 0
            while n < images_per_camera and tries < 10 * images_per_camera:
                tries += 1
                c = _capture(worlds[cam.index], cam, s, identity, n, rng)
                if c is not None:
                    captures.append(c)
                    n += 1
        if progress:
            print(f"\r  rendered {done}/{total} identities ({len(captures)} crops)", end="", file=sys.stderr,
                  flush=True)
    if progress:
        print(file=sys.stderr)
    index = LAYOUTS[layout].write(out, captures, train_ids=train, test_ids=test, overwrite=overwrite)
    return {split: len(index.records(split)) for split in index.split_names}
