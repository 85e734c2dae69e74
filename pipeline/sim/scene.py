"""The simulated camera rig and room: pinhole geometry, floor plane, walls.

World frame: metres, ``y`` up, floor ``y = 0``; the camera stands at
``(0, height, 0)`` looking along ``+z``, pitched down by ``tilt_deg``. Camera
frame: OpenCV convention (``x`` right, ``y`` down, ``z`` forward); ray
directions are kept with ``z = 1`` so a hit's ray parameter *is* its depth,
as a depth camera reports it (distance along the optical axis, not along the ray).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from reidstream.pipeline.sim.config import RoomConfig
from reidstream.pipeline.types import Intrinsics


class CameraRig:
    """A pinhole camera mounted at ``height`` metres, pitched down ``tilt_deg``.

    Args:
        intrinsics: Pinhole intrinsics of the (colour) camera; all streams are aligned to it.
        height: Height of the optical centre above the floor (m).
        tilt_deg: Downward pitch in degrees.
    """

    def __init__(self, intrinsics: Intrinsics, height: float = 2.2, tilt_deg: float = 12.0) -> None:
        if not 0.2 <= height <= 10.0:
            raise ValueError(f"CameraRig.height: expected 0.2 .. 10 m, got {height}")
        if not -30.0 <= tilt_deg <= 80.0:
            raise ValueError(f"CameraRig.tilt_deg: expected -30 .. 80 degrees, got {tilt_deg}")
        self.intrinsics = intrinsics
        self.height = float(height)
        self.tilt = math.radians(tilt_deg)
        c, s = math.cos(self.tilt), math.sin(self.tilt)
        # Rows: camera x, y (down), z (forward) axes expressed in the world frame.
        self.R = np.array([[1.0, 0.0, 0.0], [0.0, -c, -s], [0.0, -s, c]])
        self.C = np.array([0.0, self.height, 0.0])
        k = intrinsics
        u = (np.arange(k.width, dtype=np.float32) - k.cx) / k.fx
        v = (np.arange(k.height, dtype=np.float32) - k.cy) / k.fy
        uu, vv = np.meshgrid(u, v)
        self.rays = np.stack([uu, vv, np.ones_like(uu)], axis=-1)  # H x W x 3, z = 1
        self.ray_len = np.sqrt(uu * uu + vv * vv + 1.0)

    def to_camera(self, p_world: np.ndarray) -> np.ndarray:
        """World points (... x 3) -> camera frame."""
        return (np.asarray(p_world) - self.C) @ self.R.T

    def to_world(self, p_cam: np.ndarray) -> np.ndarray:
        """Camera-frame points (... x 3) -> world frame."""
        return np.asarray(p_cam) @ self.R + self.C

    def floor_point(self, u: float, v: float) -> np.ndarray | None:
        """World point of the floor seen at pixel (u, v), or None above the horizon."""
        k = self.intrinsics
        d = np.array([(u - k.cx) / k.fx, (v - k.cy) / k.fy, 1.0]) @ self.R
        if d[1] >= -1e-9:
            return None
        return self.C + d * (-self.C[1] / d[1])

    def ground_visible(self, x: float, z: float, margin: float = 0.0) -> bool:
        """Whether the floor point (x, 0, z) projects inside the image (with a pixel margin)."""
        p = self.to_camera(np.array([x, 0.0, z]))
        if p[2] <= 0.1:
            return False
        k = self.intrinsics
        u, v = k.fx * p[0] / p[2] + k.cx, k.fy * p[1] / p[2] + k.cy
        return -margin <= u < k.width + margin and -margin <= v < k.height + margin


@dataclass(frozen=True)
class Background:
    """Per-pixel attributes of the empty room as seen by a rig (H x W arrays)."""

    z: np.ndarray
    albedo: np.ndarray
    ir: np.ndarray
    temp: np.ndarray
    cos_light: np.ndarray
    cos_cam: np.ndarray


def render_room(rig: CameraRig, room: RoomConfig, light_dir_world: np.ndarray) -> Background:
    """Ray-casts the empty room once: floor tiles, walls, a door, a radiator."""
    h, w = rig.rays.shape[:2]
    d = rig.rays.reshape(-1, 3).astype(np.float64) @ rig.R  # world directions, camera z = 1
    o = rig.C
    planes = [  # (axis, value, normal pointing into the room)
        (1, 0.0, (0, 1, 0)), (1, room.height, (0, -1, 0)), (0, -room.width / 2, (1, 0, 0)),
        (0, room.width / 2, (-1, 0, 0)), (2, room.depth, (0, 0, -1)), (2, -1.0, (0, 0, 1)),
    ]
    best_t = np.full(d.shape[0], np.inf)
    best_i = np.zeros(d.shape[0], np.int64)
    for i, (axis, value, _) in enumerate(planes):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (value - o[axis]) / d[:, axis]
        ok = (t > 1e-6) & (t < best_t)
        best_t[ok], best_i[ok] = t[ok], i
    p = o + d * best_t[:, None]
    normals = np.array([n for _, _, n in planes], np.float64)[best_i]
    albedo = np.empty((d.shape[0], 3))
    ir = np.empty(d.shape[0])
    temp = np.full(d.shape[0], room.air_temp)
    floor = best_i == 0
    tiles = ((np.floor(p[:, 0] / 0.6) + np.floor(p[:, 2] / 0.6)) % 2).astype(bool)
    albedo[:] = (0.55, 0.50, 0.42)
    ir[:] = 0.70
    albedo[floor] = np.where(tiles[floor, None], (0.32, 0.30, 0.28), (0.22, 0.21, 0.20))
    ir[floor], temp[floor] = 0.45, room.air_temp - 1.0
    side = (best_i == 2) | (best_i == 3)
    albedo[side], ir[side] = (0.45, 0.50, 0.55), 0.65
    albedo[best_i == 1], temp[best_i == 1] = (0.8, 0.8, 0.8), room.air_temp + 1.0
    back = best_i == 4
    door = back & (np.abs(p[:, 0] + 1.2) < 0.45) & (p[:, 1] < 2.05)
    albedo[door], ir[door] = (0.30, 0.17, 0.08), 0.35
    radiator = back & (np.abs(p[:, 0] - 1.8) < 0.6) & (p[:, 1] > 0.2) & (p[:, 1] < 0.8)
    albedo[radiator], temp[radiator] = (0.85, 0.85, 0.85), 45.0
    cam_dirs = d / np.linalg.norm(d, axis=1, keepdims=True)
    return Background(
        z=best_t.reshape(h, w).astype(np.float32),
        albedo=albedo.reshape(h, w, 3).astype(np.float32),
        ir=ir.reshape(h, w).astype(np.float32),
        temp=temp.reshape(h, w).astype(np.float32),
        cos_light=np.clip(normals @ light_dir_world, 0, 1).reshape(h, w).astype(np.float32),
        cos_cam=np.clip(-(normals * cam_dirs).sum(1), 0, 1).reshape(h, w).astype(np.float32),
    )
